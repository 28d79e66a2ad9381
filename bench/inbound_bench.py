"""Benchmark: a bounce mailbox of 10,000 messages (bounces, complaints, auto-replies, replies)
read by the IMAP poller from a real dovecot on loopback, each received exactly once.

Target: under 60 s for the whole mailbox. Baseline: the same messages fetched from the same
server without receiving them (the IMAP transfer alone), so the ratio is our own cost.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sys_inbound \\
        .venv/bin/python bench/inbound_bench.py [--messages 10000] [--letters 2000]

The database named in DATABASE_URL is not touched: the bench builds its own throw-away
database beside it (name + "_bench", tables straight from the models) and drops it after.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campaign.test_settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from tests.letters.imap_server import HOST, PASSWORD, USER, Dovecot  # noqa: E402
from tests.letters.test_inbound_classify import (  # noqa: E402
    arf_complaint,
    exim_full,
    gmail_bounce,
)


class _NoMigrations(dict):
    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


def messages_for(letters: list, count: int) -> list[bytes]:
    """A realistic mix: 50 % bounces (permanent and temporary), 10 % complaints, 20 %
    auto-replies, 15 % replies, 5 % mail about nothing."""
    out = []
    for i in range(count):
        letter = letters[i % len(letters)]
        key, email, mid = letter.idempotency_key, letter.email, letter.message_id
        pick = i % 20
        if pick < 7:
            raw = gmail_bounce(key, email)
        elif pick < 10:
            raw = exim_full(key, email)
        elif pick < 12:
            raw = arf_complaint(key, email)
        elif pick < 16:
            raw = (f"From: <{email}>\nSubject: Automatic reply: your letter\n"
                   f"Auto-Submitted: auto-replied\nIn-Reply-To: {mid}\n\nI am away.\n")
        elif pick < 19:
            raw = (f"From: <{email}>\nSubject: Re: your letter\nIn-Reply-To: {mid}\n\n"
                   "We closed it.\n")
        else:
            raw = "From: someone@elsewhere.example\nSubject: hello\n\nwho are you\n"
        # Each message its own: a Message-ID and a line that differ (else the same bytes
        # twice would rightly be recorded once).
        raw = f"X-Bench-Message: {i}\n" + raw
        out.append(raw.replace("\r\n", "\n").replace("\n", "\r\n").encode())
    return out


def baseline_fetch(server: Dovecot, mailbox: str) -> tuple[float, int]:
    client = imaplib.IMAP4(HOST, server.port)
    client.login(USER, PASSWORD)
    started = time.perf_counter()
    client.select(f'"{mailbox}"', readonly=True)
    _, data = client.uid("SEARCH", None, "ALL")
    uids = data[0].split()
    total = 0
    for start in range(0, len(uids), 200):
        _, fetched = client.uid("FETCH", b",".join(uids[start:start + 200]), "(BODY.PEEK[])")
        total += sum(1 for item in fetched if isinstance(item, tuple))
    wall = time.perf_counter() - started
    client.logout()
    return wall, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--letters", type=int, default=2_000)
    args = parser.parse_args()

    if shutil.which("dovecot") is None:
        sys.exit("inbound_bench needs Debian's dovecot-imapd: bash .ci/install-system-packages")
    settings.MIGRATION_MODULES = _NoMigrations()
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        settings.DATABASES["default"]["NAME"] + "_bench")
    server = Dovecot().start()
    settings.INBOUND_IMAP_URL = server.url
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from django.contrib.auth import get_user_model
        from django.utils import timezone

        from campaign.services import create_campaign
        from letters import states
        from letters.inbound.imap import fetch_mail
        from letters.models import Batch, InboundMessage, Letter

        campaign = create_campaign(slug="bench", agency_name="Bench Agency")
        builder = get_user_model().objects.create(username="bench-builder")
        batch = Batch.objects.create(campaign=campaign, state="sent", created_by=builder)
        now = timezone.now()
        Letter.objects.bulk_create(
            Letter(batch=batch, campaign=campaign, email=f"abuse@net{i}.example",
                   language="en", kind=states.FIRST_NOTICE, state=states.SENT, sent_at=now,
                   subject="s", body_text="t", body_html="h",
                   message_id=f"<bench-{i}@secureyourserver.example>")
            for i in range(args.letters))
        letters = list(Letter.objects.order_by("id"))
        raw = messages_for(letters, args.messages)
        started = time.perf_counter()
        server.append(raw)
        print(f"mailbox: {len(raw)} messages appended in {time.perf_counter() - started:.1f}s "
              f"({sum(map(len, raw)) / 1e6:.1f} MB)")

        base_wall, base_count = baseline_fetch(server, "INBOX")
        started = time.perf_counter()
        summary = fetch_mail()
        wall = time.perf_counter() - started
        stored = InboundMessage.objects.count()
        print(summary.line)
        print(f"stored={stored} (exactly once: {'yes' if stored == args.messages else 'NO'}) "
              f"left_in_inbox={server.count('INBOX')} moved={server.count('Processed')}")
        print(f"fetch_mail: {wall:.1f}s  {summary.fetched / wall:,.0f} messages/s  "
              f"({'under' if wall < 60 else 'OVER'} the 60 s target)")
        print(f"baseline (IMAP fetch only): {base_wall:.2f}s  {base_count / base_wall:,.0f} "
              f"messages/s  ratio {wall / base_wall:.1f}x")
        return 0 if stored == args.messages and wall < 60 else 1
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
