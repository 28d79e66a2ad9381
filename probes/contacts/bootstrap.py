"""The RDAP bootstrap: which registry answers for which addresses (IANA's ipv4.json and
ipv6.json). A snapshot ships with the code (data/); `refresh_rdap_bootstrap` and the beat
fetch a fresh copy into RDAP_BOOTSTRAP_DIR, used whenever it is valid."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import urljoin

from django.conf import settings

from campaign import outbound
from campaign.audit import record
from probes.contacts import rdap
from probes.contacts.errors import ContactError

log = logging.getLogger(__name__)

SNAPSHOT_DIR = Path(__file__).resolve().parent / "data"
BOOTSTRAP_FILES = ("ipv4.json", "ipv6.json")
BOOTSTRAP_MAX_BYTES = 2 * 1024 * 1024


def bootstrap_dir() -> Path:
    return Path(settings.RDAP_BOOTSTRAP_DIR or settings.VAR_DIR / "rdap")


def load_bootstrap() -> rdap.Bootstrap:
    """The refreshed copy if there is a valid one, else the snapshot shipped in the repo."""
    for directory in (bootstrap_dir(), SNAPSHOT_DIR):
        try:
            docs = [json.loads((directory / name).read_text("utf-8")) for name in BOOTSTRAP_FILES]
            return rdap.Bootstrap(docs)
        except (OSError, ValueError) as exc:
            if directory != SNAPSHOT_DIR and (directory / BOOTSTRAP_FILES[0]).exists():
                log.warning("ignoring the stored RDAP bootstrap in %s: %s", directory, exc)
    raise ContactError("no usable RDAP bootstrap file (the shipped snapshot is missing)")


def refresh_bootstrap() -> dict[str, int]:
    """Fetch ipv4.json and ipv6.json from RDAP_BOOTSTRAP_URL; store them only if both parse.

    Returns the number of address blocks each file lists. The shipped snapshot stays as the
    fall-back whatever happens here.
    """
    base = settings.RDAP_BOOTSTRAP_URL
    base = base if base.endswith("/") else base + "/"
    fetched: dict[str, bytes] = {}
    counts: dict[str, int] = {}
    for name in BOOTSTRAP_FILES:
        url = urljoin(base, name)
        with tempfile.TemporaryFile() as tmp:
            try:
                outbound.fetch_url_to_file(url, tmp, max_bytes=BOOTSTRAP_MAX_BYTES,
                                           timeout=max(settings.PROBE_TIMEOUT, 10.0))
            except outbound.FetchError as exc:
                raise ContactError(f"could not fetch {url}: {exc}") from None
            tmp.seek(0)
            body = tmp.read()
        try:
            document = json.loads(body.decode("utf-8"))
            bootstrap = rdap.Bootstrap([document])
        except (UnicodeDecodeError, ValueError) as exc:
            raise ContactError(f"{url} is not a valid RDAP bootstrap file: {exc}") from None
        fetched[name] = body
        counts[name] = bootstrap.block_count
    directory = bootstrap_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in fetched.items():
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        os.replace(tmp_name, directory / name)  # atomic: readers see old or new, never half
    record("contacts.bootstrap_refresh", data={"url": base, "blocks": counts})
    return counts
