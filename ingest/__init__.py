"""IOC Map: ingest package."""
