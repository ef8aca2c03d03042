"""Tables of the reports area (filled in by its issue; import them in layers/models/__init__.py)."""
