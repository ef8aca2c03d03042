"""Users and roles, rate limits, and the audit trail."""
