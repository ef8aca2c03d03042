"""IOC Map: vision package."""
