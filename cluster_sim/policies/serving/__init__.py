"""serving policies."""
