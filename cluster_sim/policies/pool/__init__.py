"""pool policies."""
