import json

from django.core.management.base import BaseCommand

from campaign.cli import get_campaign
from campaign.reports import campaign_status


class Command(BaseCommand):
    help = "Counts for a campaign: hosts by state, imports, probes, contacts, letters."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--json", action="store_true", help="print JSON (the default form)")

    def handle(self, *args, **options):
        status = campaign_status(get_campaign(options["slug"]))
        if options["json"]:
            self.stdout.write(json.dumps(status, sort_keys=True))
            return
        hosts = status["hosts"]
        self.stdout.write(f"campaign {status['campaign']} ({status['agency']})")
        for state, count in hosts["by_state"].items():
            self.stdout.write(f"  {state:<18} {count}")
        self.stdout.write(f"hosts={hosts['total']} imports={status['imports']['total']}")
