"""Postal letters benchmark: 1,000 postal letters of an approved batch to one print-ready PDF.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sys_bench \
        .venv/bin/python bench/postal_bench.py [--letters 1000]

Creates a throw-away test database, fills it with hosts that no e-mail address reaches and
whose contact holds a postal address (one host per owner, the 21 languages in turn, so the
PDF mixes Latin, Cyrillic and CJK text), builds and approves the batch, then measures
`print_batch` (lay out every letter with WeasyPrint in chunks over the CPUs, join the
chunks' PDFs): seconds, letters/s, ms per page, bytes. The target is under 60 s for 1,000
letters.
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
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--out", help="keep the PDF here")
    args, _ = parser.parse_known_args()  # bench/run passes every bench the same arguments

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment

    connection.settings_dict["TEST"]["MIGRATE"] = False
    connection.settings_dict["TEST"]["NAME"] = f"bench_{connection.settings_dict['NAME']}"
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        call_command("compile_translations", verbosity=0)
        run(args)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def run(args) -> None:
    from datetime import UTC, datetime

    from campaign import states as host_states
    from campaign.models import Agency, Host
    from campaign.services import add_user, create_campaign
    from letters import batches
    from letters.languages import LANGUAGES
    from letters.postal import printing
    from letters.postal import services as postal
    from probes.contacts.models import Contact
    from probes.verification.models import ProbeResult, ProbeRun

    Agency.objects.create(
        name="Bundesnetzagentur", country="DE", sender_email="sys@bnetza.example",
        letterhead="Bundesnetzagentur\nTulpenfeld 4\n53113 Bonn",
        signature="Operation Secure Your Server\nBundesnetzagentur",
        info_url="https://www.bnetza.example/sys")
    campaign = create_campaign(slug="bench", agency_name="Bundesnetzagentur")
    bob = add_user(username="bob", role="staff", password="bench-password-1")
    rita = add_user(username="rita", role="reviewer", password="bench-password-1")

    t0 = time.perf_counter()
    hosts = Host.objects.bulk_create([
        Host(campaign=campaign, ip=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
             state=host_states.NO_CONTACT, country="DE", kinds=3)
        for i in range(args.letters)
    ], batch_size=5000)
    Contact.objects.bulk_create([
        Contact(host=host, status=Contact.NO_CONTACT, language=LANGUAGES[i % len(LANGUAGES)],
                country="DE", source="rdap",
                postal_address=f"Netzbetreiber {i} GmbH\nAbteilung Netzbetrieb\n"
                               f"Beispielstraße {i % 200 + 1}\n{10115 + i % 900} Berlin\nDE")
        for i, host in enumerate(hosts)
    ], batch_size=5000)
    run = ProbeRun.objects.create(campaign=campaign, status=ProbeRun.DONE)
    when = datetime(2026, 11, 20, 14, 2, tzinfo=UTC)
    ProbeResult.objects.bulk_create([
        ProbeResult(run=run, host=host, check_name="smtp_relay", port=25, verdict="open",
                    variant="plain", started_at=when,
                    details={"accepted": {"sender": "probe@canary.test",
                                          "recipient": "sys-probe@canary.test"}})
        for host in hosts
    ], batch_size=5000)
    batch = batches.build_batch(campaign=campaign, actor=bob)
    batches.submit_batch(batch=batch, actor=bob)
    batches.approve_batch(batch=batch, actor=rita)
    print(f"setup: {args.letters} postal letters built and approved in "
          f"{time.perf_counter() - t0:.1f}s")

    started = time.perf_counter()
    printed = postal.print_batch(batch=batch, actor=bob)
    seconds = time.perf_counter() - started
    if args.out:
        Path(args.out).write_bytes(printed.data)
    print(f"pdf: letters={printed.letters} pages={printed.pages} seconds={seconds:.1f} "
          f"letters_per_s={printed.letters / seconds:.1f} "
          f"ms_per_page={1000 * seconds / printed.pages:.1f} bytes={len(printed.data)} "
          f"workers={printing._workers(-(-printed.letters // printing.CHUNK))} target_s=60")


if __name__ == "__main__":
    main()
