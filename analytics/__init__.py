"""IOC Map: analytics package."""
