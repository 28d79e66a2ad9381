"""Probe runs and results (verification that a host is open)."""
