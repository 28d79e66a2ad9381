"""campaign_report SLUG [--csv]: per country and language, what the letters achieved."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from campaign.cli import get_campaign
from letters import report


class Command(BaseCommand):
    help = ("Per country and language: notified, delivered, bounced, replied, remediated, "
            "remediation rate and median days to remediation.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--csv", action="store_true", help="write CSV to stdout")

    def handle(self, *args, **options):
        rows = report.campaign_report(get_campaign(options["slug"]))
        if options["csv"]:
            self.stdout.write(report.as_csv(rows), ending="")
        else:
            self.stdout.write(report.as_table(rows))
