"""workload/traces."""
