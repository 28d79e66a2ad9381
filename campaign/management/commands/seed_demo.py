"""Demo data for a fresh development install (refuses to run unless DEBUG is on).

The demo campaign's hosts are the demo lab's loopback addresses (`manage.py run_lab`), never
real Internet hosts: a probe run or a contact look-up started from the demo must not reach
anyone. Importing them needs PROBE_ALLOWED_NETWORKS to allow loopback, which bin/dev sets.
"""

import ipaddress
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from campaign.addresses import AddressPolicy
from campaign.imports import create_import, execute_import
from campaign.models import Agency, Campaign, Host
from campaign.services import add_user, create_campaign

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_USERS = [("alice", "analyst"), ("bob", "staff"), ("rita", "reviewer"), ("admin", "admin")]
# (file, format, kind): the lab's SMTP servers as ip:port, its proxies as bare addresses.
DEMO_FEEDS = [("lab-relays.txt", "ipport", "relay"), ("lab-proxies.txt", "ip", "proxy")]


def lab_addresses() -> list[str]:
    """Every address the demo feeds list."""
    addresses = []
    for filename, _fmt, _kind in DEMO_FEEDS:
        for line in (DEMO_DIR / filename).read_text().splitlines():
            text = line.split("#", 1)[0].strip()
            if text:
                addresses.append(text.rsplit(":", 1)[0] if ":" in text else text)
    return addresses


class Command(BaseCommand):
    help = (
        "Create a demo agency, campaign, users (alice/bob/rita/admin) and import the demo "
        "lab's feeds (loopback addresses served by `manage.py run_lab`). Needs DEBUG and "
        "PROBE_ALLOWED_NETWORKS covering the lab (127.0.0.0/8); bin/dev sets both."
    )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates users with a known password: DEBUG only")
        self.check_lab_allowed()
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
        for filename, fmt, kind in DEMO_FEEDS:
            feed_import = create_import(campaign=campaign, source=str(DEMO_DIR / filename),
                                        fmt=fmt, kind=kind)
            feed_import = execute_import(feed_import.pk)
            self.stdout.write(f"{filename}: {feed_import.summary_line}")
        self.stdout.write(f"users: {', '.join(u for u, _ in DEMO_USERS)} / password: {password}")
        self.stdout.write("probes and contact look-ups reach the demo lab (manage.py run_lab, "
                          "which bin/dev starts), nothing else")

    def check_lab_allowed(self) -> None:
        policy = AddressPolicy(settings.PROBE_ALLOWED_NETWORKS)
        refused = [a for a in lab_addresses() if not policy.is_allowlisted(ipaddress.ip_address(a))]
        if refused:
            allowed = ",".join(settings.PROBE_ALLOWED_NETWORKS) or "(empty)"
            raise CommandError(
                f"the demo campaign's hosts are the demo lab's loopback addresses "
                f"({refused[0]} and {len(refused) - 1} more), but PROBE_ALLOWED_NETWORKS="
                f"{allowed} does not allow them, so they would be rejected on import. Run the "
                f"demo with bin/dev, or set PROBE_ALLOWED_NETWORKS=127.0.0.0/8 and start "
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
