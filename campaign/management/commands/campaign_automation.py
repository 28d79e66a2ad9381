import argparse

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from campaign.automation import policy_line, set_policy
from campaign.cli import get_campaign, get_user


class Command(BaseCommand):
    help = (
        "Show or set a campaign's automation policy: probe new hosts as they arrive, resolve "
        "the contacts of verified hosts, draft a batch per language every day (all off by "
        "default; review and approval stay with people). Last line: "
        "probe_new=on|off contacts=on|off daily_batches=on|off."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        for name, what in (("probe-new", "probe new hosts as they arrive"),
                           ("contacts", "resolve contacts of verified hosts"),
                           ("daily-batches", "draft a batch per language every day")):
            parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction,
                                default=None, help=what)
        parser.add_argument("--by", default=None, help="acting user (an admin)")

    def handle(self, *args, **options):
        campaign = get_campaign(options["slug"])
        switches = {"probe_new": options["probe_new"], "contacts": options["contacts"],
                    "daily_batches": options["daily_batches"]}
        if any(value is not None for value in switches.values()):
            try:
                campaign = set_policy(campaign, actor=get_user(options["by"]), **switches)
            except PermissionDenied as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(policy_line(campaign))
