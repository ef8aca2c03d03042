"""Storage of the vision area: cameras, detection events and traffic counts."""
