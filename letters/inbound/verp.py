"""Per-letter return paths (VERP): `bounces+<letter token>@<bounce domain>`.

A bounce goes to the envelope sender, whatever mail system sends it and whatever it keeps of
our letter; with the letter's token in that address, the bounce names its letter exactly.
The token is the letter's idempotency key (32 random hex digits): unguessable, so a forged
bounce cannot bounce someone else's letter, and case-proof (MTAs lower-case local parts).
"""

from __future__ import annotations

import re

from django.conf import settings

_TOKEN = re.compile(r"^[0-9a-f]{32}$")


def verp_address(token: str, domain: str | None = None) -> str | None:
    """The return path for the letter with this token, or None without a bounce domain."""
    domain = (domain or settings.BOUNCE_DOMAIN or "").strip()
    if not domain:
        return None
    return f"{settings.BOUNCE_LOCAL_PART}+{token}@{domain}"


def token_of(address: str) -> str:
    """The letter token in a return path (`bounces+TOKEN@…`), "" for any other address."""
    local, _, _domain = (address or "").partition("@")
    prefix, plus, token = local.partition("+")
    if not plus or prefix.lower() != settings.BOUNCE_LOCAL_PART.lower():
        return ""
    token = token.strip().lower()
    return token if _TOKEN.match(token) else ""
