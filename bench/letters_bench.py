"""Letters benchmark: build, render, store and queue a batch of 10,000 letters over 20,000 hosts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sys_letters \
        .venv/bin/python bench/letters_bench.py [--hosts 20000] [--send 1000]

Creates a throw-away test database (tables from the models), fills it with hosts that have
an open probe result and a resolved contact (two hosts per contact, 21 languages, a third of
the campaign bilingual-free), then measures:

- build: `build_batch` (select findings, render every letter in its language, store letters
  and their host links) — letters/s and the number of queries for the whole batch;
- queue: submit + approve (letters draft → queued) — seconds and queries;
- send: `send_batch` over the first N letters with anymail's test backend, unthrottled.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campaign.test_settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20000)
    parser.add_argument("--per-contact", type=int, default=2)
    parser.add_argument("--send", type=int, default=1000, help="letters to send (0: none)")
    parser.add_argument("--profile", action="store_true", help="cProfile the build step")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    # Tables straight from the models (no migrations needed), in a database of its own.
    connection.settings_dict["TEST"]["MIGRATE"] = False
    connection.settings_dict["TEST"]["NAME"] = f"bench_{connection.settings_dict['NAME']}"
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        run(args, CaptureQueriesContext, connection)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args, capture, connection) -> None:
    from datetime import UTC, datetime

    from django.conf import settings
    from django.core import mail

    from campaign import states as host_states
    from campaign.models import Agency, Host
    from campaign.services import add_user, create_campaign
    from letters import batches, sending, states
    from letters.languages import LANGUAGES
    from letters.throttle import Throttle
    from probes.contacts.models import Contact
    from probes.verification.models import ProbeResult, ProbeRun

    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    Agency.objects.create(
        name="Federal Trade Commission", sender_email="secureyourserver@ftc.example",
        info_url="https://www.ftc.example/secureyourserver",
        instructions_url="https://www.ftc.example/secureyourserver/howto",
    )
    campaign = create_campaign(slug="bench", agency_name="Federal Trade Commission")
    bob = add_user(username="bob", role="staff", password="bench-password-1")
    rita = add_user(username="rita", role="reviewer", password="bench-password-1")

    t0 = time.perf_counter()
    hosts = Host.objects.bulk_create([
        Host(campaign=campaign, ip=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
             state=host_states.CONTACT_RESOLVED, country="XX", kinds=3)
        for i in range(args.hosts)
    ], batch_size=5000)
    contacts = []
    for i, host in enumerate(hosts):
        owner = i // args.per_contact
        contacts.append(Contact(
            host=host, status=Contact.RESOLVED, email=f"abuse@net{owner}.example",
            language=LANGUAGES[owner % len(LANGUAGES)], country="XX", source="rdap"))
    Contact.objects.bulk_create(contacts, batch_size=5000)
    run = ProbeRun.objects.create(campaign=campaign, status=ProbeRun.DONE)
    when = datetime(2026, 11, 20, 14, 2, tzinfo=UTC)
    ProbeResult.objects.bulk_create([
        ProbeResult(run=run, host=host, check_name="smtp_relay" if i % 3 else "http_proxy",
                    port=25 if i % 3 else 8080, verdict="open", variant="plain",
                    details={"accepted": {"sender": "probe@canary.test",
                                          "recipient": "sys-probe@canary.test"}} if i % 3 else {},
                    started_at=when)
        for i, host in enumerate(hosts)
    ], batch_size=5000)
    print(f"setup: {args.hosts} hosts in {time.perf_counter() - t0:.1f}s")

    with capture(connection) as queries:
        t0 = time.perf_counter()
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            batch = profiler.runcall(batches.build_batch, campaign=campaign, actor=bob)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        else:
            batch = batches.build_batch(campaign=campaign, actor=bob)
        build_s = time.perf_counter() - t0
    letters = batch.letters.count()
    print(f"build: letters={letters} hosts={args.hosts} seconds={build_s:.2f} "
          f"letters_per_s={letters / build_s:.0f} queries={len(queries.captured_queries)}")

    with capture(connection) as queries:
        t0 = time.perf_counter()
        batches.submit_batch(batch=batch, actor=bob)
        batches.approve_batch(batch=batch, actor=rita)
        queue_s = time.perf_counter() - t0
    queued = batch.letters.filter(state=states.QUEUED).count()
    print(f"queue: queued={queued} seconds={queue_s:.2f} "
          f"queries={len(queries.captured_queries)}")

    if args.send:
        # Send a slice: keep the rest out of reach by cancelling it first.
        keep = list(batch.letters.order_by("id").values_list("id", flat=True)[:args.send])
        batch.letters.exclude(pk__in=keep).update(state=states.CANCELLED)
        mail.outbox = []
        with capture(connection) as queries:
            t0 = time.perf_counter()
            summary = sending.send_batch(batch=batch, throttle=Throttle(0, 0))
            send_s = time.perf_counter() - t0
        print(f"send: {summary.line} seconds={send_s:.2f} "
              f"letters_per_s={summary.sent / send_s:.0f} outbox={len(mail.outbox)} "
              f"queries_per_letter={len(queries.captured_queries) / max(summary.sent, 1):.1f}")


if __name__ == "__main__":
    main()
