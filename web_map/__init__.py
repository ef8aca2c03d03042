"""IOC Map: web_map package."""
