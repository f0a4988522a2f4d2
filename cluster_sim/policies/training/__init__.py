"""training policies."""
