"""Pluggable policies: training scheduling stages, serving, pool management. See registry.py."""
