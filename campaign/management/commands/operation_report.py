"""operation_report [--json]: per agency, over all campaigns, hosts routed/notified/remediated."""

import json

from django.core.management.base import BaseCommand

from campaign.agencies import operation_summary


class Command(BaseCommand):
    help = ("The whole operation: for each agency, the hosts routed to it across the campaigns "
            "it leads or joins, how many were notified and how many remediated.")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **options):
        summary = operation_summary()
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        self.stdout.write("{:<40}{:>10}{:>10}{:>11}{:>11}".format(
            "agency", "campaigns", "hosts", "notified", "remediated"))
        for row in summary["agencies"]:
            self.stdout.write("{:<40}{:>10}{:>10}{:>11}{:>11}".format(
                row["agency"][:39], len(row["campaigns"]), row["hosts_routed"],
                row["notified"], row["remediated"]))
        total = summary["total"]
        self.stdout.write(
            f"campaigns={summary['campaigns']} agencies={len(summary['agencies'])} "
            f"hosts={total['hosts_routed']} notified={total['notified']} "
            f"remediated={total['remediated']}")
