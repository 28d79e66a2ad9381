"""The IMAP poller: the bounce mailbox (INBOUND_IMAP_URL) read once a minute.

Each message is received (letters.inbound.receive) and only then moved to the done folder
(INBOUND_IMAP_DONE_FOLDER), a chunk of up to BATCH at a time: a poller killed between the
two leaves the messages where they were, and the next poll receives them again, which
changes nothing (a message is recorded once,
by its sha256). A message that cannot be read is kept in the database (flagged, as
`unmatched`) and moved with `\\Flagged` set, so staff find it on the server too; nothing is
ever deleted before it is recorded.

    INBOUND_IMAP_URL=imaps://user:password@imap.agency.example:993/INBOX
    (imap:// is plain IMAP, for a server on the same host; user and password URL-quoted)
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from letters.inbound import classify as kinds
from letters.inbound.receive import receive_raw

log = logging.getLogger(__name__)

BATCH = 200  # messages fetched per FETCH command


@dataclass(frozen=True)
class ImapAccount:
    secure: bool
    host: str
    port: int
    user: str
    password: str
    mailbox: str

    @classmethod
    def from_url(cls, url: str) -> ImapAccount:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise ImproperlyConfigured(
                f"INBOUND_IMAP_URL must be imaps://user:password@host:port/MAILBOX, not "
                f"{parts.scheme or '(no scheme)'}://…")
        if not parts.username:
            raise ImproperlyConfigured("INBOUND_IMAP_URL names no user")
        secure = parts.scheme == "imaps"
        return cls(secure=secure, host=parts.hostname, port=parts.port or (993 if secure else 143),
                   user=unquote(parts.username), password=unquote(parts.password or ""),
                   mailbox=unquote(parts.path.lstrip("/")) or "INBOX")


@dataclass
class FetchSummary:
    fetched: int = 0
    counts: Counter = field(default_factory=Counter)

    @property
    def line(self) -> str:
        c = self.counts
        return (f"fetched={self.fetched} bounces={c[kinds.BOUNCE]} "
                f"complaints={c[kinds.COMPLAINT]} auto_replies={c[kinds.AUTO_REPLY]} "
                f"replies={c[kinds.REPLY]} unmatched={c[kinds.UNMATCHED]}")


def _connect(account: ImapAccount) -> imaplib.IMAP4:
    timeout = settings.INBOUND_IMAP_TIMEOUT
    if account.secure:
        client = imaplib.IMAP4_SSL(account.host, account.port,
                                   ssl_context=ssl.create_default_context(), timeout=timeout)
    else:
        client = imaplib.IMAP4(account.host, account.port, timeout=timeout)
    client.login(account.user, account.password)
    return client


def _check(result: tuple, doing: str) -> list:
    status, data = result
    if status != "OK":
        raise imaplib.IMAP4.error(f"{doing}: {status} {data!r}"[:300])
    return data


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fetch_mail(url: str | None = None, *, done_folder: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> FetchSummary:
    """Receive every message in the mailbox, moving each to the done folder once recorded."""
    account = ImapAccount.from_url(url or settings.INBOUND_IMAP_URL)
    done_folder = done_folder or settings.INBOUND_IMAP_DONE_FOLDER
    summary = FetchSummary()
    client = _connect(account)
    try:
        client.create(_quote(done_folder))  # NO when it exists: fine
        _check(client.select(_quote(account.mailbox)), f"select {account.mailbox}")
        (uid_list,) = _check(client.uid("SEARCH", None, "ALL"), "search")
        uids = uid_list.split() if uid_list else []
        # Asked after login: servers announce more then (RFC 6851 MOVE; else COPY, \\Deleted,
        # EXPUNGE).
        (capabilities,) = _check(client.capability(), "capability")
        can_move = b"MOVE" in (capabilities or b"").upper().split()
        for start in range(0, len(uids), BATCH):
            chunk = uids[start:start + BATCH]
            handled, unreadable = [], []
            for uid, raw in _fetch(client, chunk):
                received = receive_raw(raw, source="imap")
                summary.fetched += 1
                summary.counts[received.kind] += 1
                handled.append(uid)
                if received.error:
                    unreadable.append(uid)
            # Moved once the whole chunk is recorded (one command, not one per message):
            # killed before this, the chunk comes round again and is recorded once.
            if unreadable:
                client.uid("STORE", b",".join(unreadable), "+FLAGS", "(\\Flagged)")
            if handled:
                _move(client, b",".join(handled), done_folder, can_move)
                if not can_move:
                    client.expunge()
            if progress is not None:
                progress(min(start + BATCH, len(uids)), len(uids))
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return summary


_UID = re.compile(rb"UID (\d+)")


def _fetch(client: imaplib.IMAP4, uids: list[bytes]) -> list[tuple[bytes, bytes]]:
    data = _check(client.uid("FETCH", b",".join(uids), "(UID BODY.PEEK[])"), "fetch")
    found = []
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            match = _UID.search(item[0])
            if match:
                found.append((match.group(1), item[1]))
    return found


def _move(client: imaplib.IMAP4, uids: bytes, folder: str, can_move: bool) -> None:
    """Move the messages of a UID set (`3,4,9`) to `folder`."""
    if can_move:
        _check(client.uid("MOVE", uids, _quote(folder)), "move")
        return
    _check(client.uid("COPY", uids, _quote(folder)), "copy")
    _check(client.uid("STORE", uids, "+FLAGS", "(\\Deleted)"), "delete")
