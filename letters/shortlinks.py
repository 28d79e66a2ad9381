"""Short links for printed letters: /s/<code> opens the recipient's page.

A postal letter cannot carry the long signed link an e-mail does: people type it from paper.
Its code is 12 characters of Crockford's base32 (60 random bits, shown as XXXX-XXXX-XXXX),
read back case-insensitively, without the dashes, and with the letters people confuse with
digits (O, I, L) taken as those digits. It opens the page only for a letter that was posted,
while the campaign runs and the link's lifetime (RECIPIENT_LINK_MAX_AGE_DAYS) lasts, like the
signed link it stands for.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from campaign.models import Campaign
from letters import states
from letters.models import Letter

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
LENGTH = 12
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_short_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def display_code(code: str) -> str:
    """XXXX-XXXX-XXXX: what the letter prints and people type."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def short_url(code: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}/s/{display_code(code)}"


def read_code(typed: str) -> str | None:
    """The stored form of what someone typed, or None when it cannot be a code."""
    code = "".join(typed.split()).replace("-", "").upper().translate(_READ_AS)
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


def letter_for_code(typed: str) -> Letter | None:
    """The posted letter a typed code opens, else None (whatever the reason)."""
    code = read_code(typed)
    if code is None:
        return None
    letter = (Letter.objects.select_related("campaign")
              .filter(short_code=code, channel=states.POSTAL, state__in=states.OUT_STATES)
              .first())
    if letter is None or letter.campaign.status == Campaign.CLOSED:
        return None
    posted = letter.posted_at or letter.sent_at
    max_age = timedelta(days=int(settings.RECIPIENT_LINK_MAX_AGE_DAYS))
    if posted is None or timezone.now() - posted > max_age:
        return None
    return letter
