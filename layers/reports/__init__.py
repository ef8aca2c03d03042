"""Storage of field reports and their photos (the workflow lives in analytics)."""
