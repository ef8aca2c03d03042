"""Demo data: real Nghệ An boundaries and deterministic synthetic sector layers."""
