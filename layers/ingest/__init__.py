"""Import batches: their lifecycle and rejects, staging tables and binary COPY."""
