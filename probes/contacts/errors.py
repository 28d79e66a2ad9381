"""What the contact services refuse with."""

from __future__ import annotations


class ContactError(Exception):
    """A request a person made that cannot be carried out; the message says why."""
