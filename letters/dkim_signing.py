"""DKIM signatures on letters an agency sends through its own mail server.

Configured per installation (DKIM_SELECTOR, DKIM_PRIVATE_KEY_FILE, DKIM_DOMAIN) or per agency
(its `dkim_selector` and `dkim_key_file`); the signing domain is DKIM_DOMAIN, else the domain
of the agency's sender address (the From the recipient's server checks the signature
against). Through an ESP the ESP signs. The key is read from a file on the server, never
stored in the database. relaxed/relaxed canonicalisation: relays that re-fold headers or
re-wrap white space do not break the signature.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import dkim
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SIGNED_HEADERS = (b"From", b"To", b"Subject", b"Date", b"Message-ID", b"Reply-To",
                  b"Content-Type", b"MIME-Version", b"Content-Language")


@dataclass(frozen=True)
class DkimKey:
    selector: str
    domain: str
    private_key: bytes


@functools.lru_cache(maxsize=16)
def _read_key(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(f"DKIM key file {path}: {exc.strerror}") from exc
    if b"PRIVATE KEY" not in data:
        raise ImproperlyConfigured(f"DKIM key file {path} holds no PEM private key")
    return data


def key_for(agency: dict, sender: str) -> DkimKey | None:
    """The key letters of this agency (its letter context) are signed with, or None."""
    selector = agency.get("dkim_selector") or settings.DKIM_SELECTOR
    path = agency.get("dkim_key_file") or settings.DKIM_PRIVATE_KEY_FILE
    if not selector or not path:
        return None
    domain = settings.DKIM_DOMAIN or sender.rpartition("@")[2]
    return DkimKey(selector=selector, domain=domain.lower(), private_key=_read_key(path))


def signature_header(message_bytes: bytes, key: DkimKey) -> tuple[str, str]:
    """(name, value) of the DKIM-Signature header for the message as it will be sent."""
    signed = dkim.sign(message_bytes, key.selector.encode(), key.domain.encode(),
                       key.private_key, canonicalize=(b"relaxed", b"relaxed"),
                       include_headers=list(SIGNED_HEADERS))
    name, _, value = signed.decode("ascii").partition(":")
    # The generator re-folds the header; relaxed canonicalisation makes that harmless.
    return name, " ".join(value.split())
