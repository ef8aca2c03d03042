"""Sector indicators: the catalog and the observations (dashboards: analytics)."""
