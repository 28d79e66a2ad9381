"""campaign_report SLUG [--csv] [--agency NAME]: per country and language, what letters did."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from campaign.agencies import participant_ids
from campaign.cli import get_campaign
from campaign.models import Agency
from letters import effect, report


class Command(BaseCommand):
    help = ("Per country and language: notified, delivered, bounced, replied, remediated, "
            "remediation rate and median days to remediation.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--csv", action="store_true", help="write CSV to stdout")
        parser.add_argument("--json", action="store_true",
                            help="rows and the letters' effect against the control group")
        parser.add_argument("--agency", default=None,
                            help="only the letters of this agency (joint campaigns)")

    def handle(self, *args, **options):
        campaign = get_campaign(options["slug"])
        agency = None
        if options["agency"]:
            agency = Agency.objects.filter(name=options["agency"].strip()).first()
            if agency is None or agency.pk not in participant_ids(campaign):
                raise CommandError(
                    f"agency {options['agency']!r} takes no part in campaign {campaign.slug}")
        rows = report.campaign_report(campaign, agency)
        if options["json"]:
            payload = {"rows": rows, "effect": effect.campaign_effect(campaign)}
            self.stdout.write(json.dumps(payload, indent=2, sort_keys=True))
        elif options["csv"]:
            self.stdout.write(report.as_csv(rows), ending="")
        else:
            self.stdout.write(report.as_table(rows))
