"""Operating a running LB: its Prometheus metrics (metrics.py)."""
