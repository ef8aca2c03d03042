"""Sector connectors: HTTP JSON pull, drop folder and MQTT, configured in YAML."""
