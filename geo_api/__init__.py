"""IOC Map: geo_api package."""
