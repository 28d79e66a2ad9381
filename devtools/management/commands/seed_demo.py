"""Demo data for a fresh development install (refuses to run unless DEBUG is on).

The demo campaign's hosts are the demo lab's loopback addresses (`manage.py run_lab`), never
real Internet hosts: a probe run or a contact look-up started from the demo must not reach
anyone. Importing them needs PROBE_ALLOWED_NETWORKS to allow the lab's 127.0.42.0/24 (and no
other loopback address: that would be this machine's own services), which bin/dev sets.
"""

import ipaddress
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from campaign.addresses import AddressPolicy
from campaign.imports import create_import, run_import
from campaign.models import Agency, Campaign, Host
from campaign.services import add_user, create_campaign
from devtools.lab import check_base

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_USERS = [("alice", "analyst"), ("bob", "staff"), ("rita", "reviewer"), ("admin", "admin")]
# (file, format, kind): the lab's SMTP servers as ip:port, its proxies as bare addresses.
DEMO_FEEDS = [("lab-relays.txt", "ipport", "relay"), ("lab-proxies.txt", "ip", "proxy")]


SHIPPED_BASE = "127.0.42"  # the demo feeds' addresses (devtools.lab.DEFAULT_BASE)


def feed_text(filename: str, base: str = SHIPPED_BASE) -> str:
    """A demo feed, its addresses moved to the lab at `base` (bin/dev's LAB_BASE)."""
    text = (DEMO_DIR / filename).read_text()
    return text if base == SHIPPED_BASE else text.replace(f"{SHIPPED_BASE}.", f"{base}.")


def lab_addresses(base: str = SHIPPED_BASE) -> list[str]:
    """Every address the demo feeds list."""
    addresses = []
    for filename, _fmt, _kind in DEMO_FEEDS:
        for line in feed_text(filename, base).splitlines():
            text = line.split("#", 1)[0].strip()
            if text:
                addresses.append(text.rsplit(":", 1)[0] if ":" in text else text)
    return addresses


def covers_own_loopback(net: ipaddress.IPv4Network | ipaddress.IPv6Network,
                        lab_nets: list[str]) -> bool:
    """Whether `net` reaches loopback addresses outside the lab: this machine's own services."""
    if net.version == 6:
        return net.overlaps(ipaddress.ip_network("::1/128"))
    if not net.overlaps(ipaddress.ip_network("127.0.0.0/8")):
        return False
    return not any(net.subnet_of(ipaddress.ip_network(lab)) for lab in lab_nets)


class Command(BaseCommand):
    help = (
        "Create a demo agency, campaign, users (alice/bob/rita/admin) and import the demo "
        "lab's feeds (loopback addresses served by `manage.py run_lab`). Needs DEBUG and "
        "PROBE_ALLOWED_NETWORKS covering the lab and no other loopback (127.0.42.0/24); bin/dev "
        "sets both."
    )

    def add_arguments(self, parser):
        parser.add_argument("--lab-base", default=SHIPPED_BASE, metavar="127.X.Y",
                            help="where the demo lab runs (run_lab --bind-base; bin/dev's "
                                 f"LAB_BASE): the feeds' hosts are moved there (default "
                                 f"{SHIPPED_BASE})")

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates users with a known password: DEBUG only")
        try:
            base = check_base(options["lab_base"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.check_lab_allowed(base)
        password = os.environ.get("DEMO_PASSWORD", "demo-password-2026")
        existing = Campaign.objects.filter(slug="demo").first()
        if existing is not None:
            self.check_existing(existing)
            self.stdout.write("demo data already present")
            return
        agency, _ = Agency.objects.get_or_create(name="Demo Consumer Protection Agency")
        agency.country = "US"
        agency.sender_email = "secureyourserver@agency.example"
        agency.reply_to = "secureyourserver@agency.example"
        agency.info_url = "https://agency.example/secureyourserver"
        agency.instructions_url = "https://agency.example/secureyourserver/instructions"
        agency.signature = "Demo Consumer Protection Agency\nOperation Secure Your Server"
        agency.save()
        for username, role in DEMO_USERS:
            add_user(username=username, role=role, password=password, agency_name=agency.name)
        campaign = create_campaign(slug="demo", agency_name=agency.name, kinds="relay,proxy",
                                   name="Operation Secure Your Server (demo)")
        with tempfile.TemporaryDirectory() as moved:
            for filename, fmt, kind in DEMO_FEEDS:
                source = DEMO_DIR / filename
                if base != SHIPPED_BASE:
                    source = Path(moved) / filename
                    source.write_text(feed_text(filename, base))
                feed_import = create_import(campaign=campaign, source=str(source), fmt=fmt,
                                            kind=kind)
                feed_import = run_import(feed_import.pk)
                self.stdout.write(f"{filename}: {feed_import.summary_line}")
        self.stdout.write(f"users: {', '.join(u for u, _ in DEMO_USERS)} / password: {password}")
        self.stdout.write("probes and contact look-ups reach the demo lab (manage.py run_lab, "
                          "which bin/dev starts), nothing else")

    def check_lab_allowed(self, base: str = SHIPPED_BASE) -> None:
        policy = AddressPolicy(settings.PROBE_ALLOWED_NETWORKS)
        lab_nets = sorted({str(ipaddress.ip_network(f"{a}/24", strict=False))
                           for a in lab_addresses(base)})
        too_wide = [str(net) for net in policy.allowed if covers_own_loopback(net, lab_nets)]
        if too_wide:
            raise CommandError(
                f"PROBE_ALLOWED_NETWORKS allows {too_wide[0]}, loopback beyond the demo lab "
                f"({', '.join(lab_nets)}): a feed line such as 127.0.0.1 would be probed on "
                f"this machine's own services. Allow only the lab's network "
                f"(PROBE_ALLOWED_NETWORKS={','.join(lab_nets)}, which bin/dev sets)."
            )
        refused = [a for a in lab_addresses(base)
                   if not policy.is_allowlisted(ipaddress.ip_address(a))]
        if refused:
            allowed = ",".join(settings.PROBE_ALLOWED_NETWORKS) or "(empty)"
            raise CommandError(
                f"the demo campaign's hosts are the demo lab's loopback addresses "
                f"({refused[0]} and {len(refused) - 1} more), but PROBE_ALLOWED_NETWORKS="
                f"{allowed} does not allow them, so they would be rejected on import. Run the "
                f"demo with bin/dev, or set PROBE_ALLOWED_NETWORKS=127.0.42.0/24 and start "
                f"`manage.py run_lab`."
            )

    def check_existing(self, campaign: Campaign) -> None:
        # An older seed_demo imported real Internet addresses: a probe run from that demo
        # would scan strangers. Refuse to carry on with it rather than leave it in place.
        outside = [
            ip for ip in Host.objects.filter(campaign=campaign).values_list("ip", flat=True)
            if not ipaddress.ip_address(ip).is_loopback
        ]
        if outside:
            raise CommandError(
                f"the existing demo campaign holds {len(outside)} real Internet addresses "
                f"(e.g. {outside[0]}) from an older seed_demo; probing them would reach "
                f"strangers. Start from a fresh development database (drop or delete "
                f"{settings.DATABASES['default']['NAME']}) and run bin/dev again."
            )
