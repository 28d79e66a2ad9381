"""Abuse contacts, the network cache and the suppression list."""
