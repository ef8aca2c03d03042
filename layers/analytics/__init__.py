"""Storage of the analytics area: H3 aggregates, alert rules and alerts."""
