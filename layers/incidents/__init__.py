"""Incident command storage (issue 21): tables in layers.models.incidents, statements in store."""
