"""Adapters: the only layer that touches files, databases and other I/O libraries."""
