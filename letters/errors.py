"""What the letter services refuse with, and the permission check each of them starts with.

Every interface (pages, commands, tasks) gets the same refusals: a LetterError's message is a
sentence a person can act on; FourEyesViolation is the four-eyes rule.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from campaign.roles import has_perm


class LetterError(Exception):
    """A request that cannot be carried out, with a sentence a person understands."""


class FourEyesViolation(PermissionDenied):
    pass


class ConcurrentChange(LetterError):
    pass


def check_perm(actor, codename: str, doing: str) -> None:
    if actor is None or not has_perm(actor, codename):
        raise PermissionDenied(f"{actor or 'nobody'} may not {doing}")
