"""Demo data for a fresh development install (refuses to run unless DEBUG is on)."""

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from campaign.imports import create_import, execute_import
from campaign.models import Agency, Campaign
from campaign.services import add_user, create_campaign

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_USERS = [("alice", "analyst"), ("bob", "staff"), ("rita", "reviewer"), ("admin", "admin")]


class Command(BaseCommand):
    help = "Create a demo agency, campaign, users (alice/bob/rita/admin) and import sample feeds."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates users with a known password: DEBUG only")
        password = os.environ.get("DEMO_PASSWORD", "demo-password-2026")
        if Campaign.objects.filter(slug="demo").exists():
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
        for filename, kind in [("plain-ips.txt", "relay"), ("open-proxies.txt", "proxy")]:
            feed_import = create_import(campaign=campaign, source=str(DEMO_DIR / filename),
                                        kind=kind)
            feed_import = execute_import(feed_import.pk)
            self.stdout.write(f"{filename}: {feed_import.summary_line}")
        self.stdout.write(f"users: {', '.join(u for u, _ in DEMO_USERS)} / password: {password}")
