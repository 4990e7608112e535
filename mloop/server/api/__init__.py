"""One router module per capability."""
