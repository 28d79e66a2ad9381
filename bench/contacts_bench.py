"""Benchmark: resolve 100,000 hosts spread over 2,000 networks against a loopback RDAP fake.

Targets: exactly one RDAP query per network, and under 60 s of wall time for the run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sys_contacts \\
        .venv/bin/python bench/contacts_bench.py [--hosts 100000] [--networks 2000]

The database named in DATABASE_URL is not touched: the bench builds its own throw-away
database beside it (name + "_bench", tables straight from the models) and drops it after.
Only 127.0.0.1 is contacted. The per-registry pace is the product's default politeness
(CONTACT_LOOKUPS_PER_SECOND, 10 a second per registry): with 400 networks per RIR that alone
is 40 s, so the run must ask the five registries concurrently; --per-second 0 runs unpaced.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campaign.test_settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from tests.contacts.fakes import RDAP_DIR, FakeRdap, Reply  # noqa: E402

# One /8 per RIR, taken from the fixtures' own networks, so the shipped bootstrap routes them.
RIR_BLOCKS = {"ripe": 82, "arin": 99, "apnic": 220, "lacnic": 179, "afrinic": 41}


class _NoMigrations(dict):
    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


def network_of(index: int) -> tuple[str, str]:
    """(registry, "a.b.c") for the index-th /24 of the bench."""
    registries = list(RIR_BLOCKS)
    registry = registries[index % len(registries)]
    n = index // len(registries)
    return registry, f"{RIR_BLOCKS[registry]}.{n // 250}.{n % 250}"


def make_fallback(fake: FakeRdap):
    template = json.loads((RDAP_DIR / "ripe-ip-82.44.76.0-22.json").read_text())

    def answer(path: str) -> Reply | None:
        _registry, _, rest = path.lstrip("/").partition("/")
        if not rest.startswith("ip/"):
            return None
        a, b, c, _d = rest[3:].split(".")
        doc = dict(template)
        doc["handle"] = f"NET-{a}-{b}-{c}-0"
        doc["startAddress"], doc["endAddress"] = f"{a}.{b}.{c}.0", f"{a}.{b}.{c}.255"
        doc["cidr0_cidrs"] = [{"v4prefix": f"{a}.{b}.{c}.0", "length": 24}]
        doc["name"] = f"BENCH-{a}-{b}-{c}"
        entities = json.loads(json.dumps(template["entities"]))
        entities[4]["vcardArray"][1][4][3] = f"abuse@net-{a}-{b}-{c}.example"
        doc["entities"] = entities
        return Reply(200, json.dumps(doc).encode(), {"Content-Type": "application/rdap+json"})

    return answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--networks", type=int, default=2_000)
    parser.add_argument("--per-second", type=float, default=None,
                        help="per-registry pace (default: CONTACT_LOOKUPS_PER_SECOND, the "
                             "product's politeness; 0 = unpaced)")
    args = parser.parse_args()
    if args.per_second is None:
        args.per_second = float(settings.CONTACT_LOOKUPS_PER_SECOND)
    per_network = args.hosts // args.networks

    settings.MIGRATION_MODULES = _NoMigrations()
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        settings.DATABASES["default"]["NAME"] + "_bench"
    )
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    settings.CONTACT_LOOKUPS_PER_SECOND = args.per_second
    settings.WHOIS_IANA_SERVER = "127.0.0.1:9"  # nothing listens: no WHOIS is expected
    tmp = tempfile.TemporaryDirectory()
    settings.RDAP_BOOTSTRAP_DIR = tmp.name

    fake = FakeRdap().load_fixtures()
    fake.fallback = make_fallback(fake)
    fake.start()
    settings.RDAP_BOOTSTRAP_URL = fake.bootstrap_url
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from campaign import states
        from campaign.models import Host
        from campaign.services import create_campaign
        from probes.contacts import bootstrap, resolving
        from probes.contacts.models import Contact, NetworkRecord

        bootstrap.refresh_bootstrap()
        campaign = create_campaign(slug="bench", agency_name="Bench Agency")
        hosts = [
            Host(campaign=campaign, ip=f"{network_of(i)[1]}.{1 + 5 * j}",
                 state=states.VERIFIED_OPEN)
            for i in range(args.networks) for j in range(per_network)
        ]
        Host.objects.bulk_create(hosts, batch_size=5000)
        fake.requests.clear()

        started = time.perf_counter()
        summary = resolving.resolve_hosts(campaign)
        wall = time.perf_counter() - started

        resolved_hosts = Host.objects.filter(state=states.CONTACT_RESOLVED).count()
        distinct = Contact.objects.values("email").distinct().count()
        print(summary.line)
        print(f"networks={args.networks} rdap_requests_seen_by_fake={len(fake.requests)} "
              f"network_records={NetworkRecord.objects.count()} distinct_emails={distinct} "
              f"hosts_contact_resolved={resolved_hosts}")
        per_net = "exactly one per network" if summary.queries == args.networks else "MISSED"
        print(f"queries={summary.queries} for {args.networks} networks ({per_net})")
        print(f"wall={wall:.1f}s ({'under' if wall < 60 else 'OVER'} the 60 s target) "
              f"rate={summary.hosts / wall:,.0f} hosts/s pace={args.per_second or 'off'}")
        ok = summary.queries == args.networks and summary.resolved == len(hosts) and wall < 60
        return 0 if ok else 1
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
        fake.stop()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
