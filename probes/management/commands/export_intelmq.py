import json
import sys
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from campaign.cli import get_campaign, get_user
from campaign.selectors import campaign_for
from probes.verification.export import intelmq_events


class Command(BaseCommand):
    help = (
        "Write the campaign's verified open findings as IntelMQ events (JSON lines, "
        "harmonization field names) to --out or stdout. Last line on stdout (or stderr when "
        "the events go to stdout): events=N."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True)
        parser.add_argument("--out", default="-", help="file to write; - for stdout")
        parser.add_argument("--since", default=None,
                            help="only findings probed since this ISO 8601 time")
        parser.add_argument("--by", default=None, help="acting user (must see the campaign)")

    def handle(self, *args, **options):
        campaign = get_campaign(options["campaign"])
        actor = get_user(options["by"])
        if actor is not None:
            try:
                campaign_for(actor, campaign.slug)
            except Http404:
                raise CommandError(f"{actor} may not see campaign {campaign.slug}") from None
        since = None
        if options["since"]:
            try:
                since = datetime.fromisoformat(options["since"])
            except ValueError:
                raise CommandError(f"--since {options['since']!r} is not an ISO 8601 time"
                                   ) from None
            if since.tzinfo is None:
                raise CommandError("--since needs a time zone (e.g. 2026-11-01T00:00:00Z)")
        to_stdout = options["out"] == "-"
        try:
            out = self.stdout if to_stdout else open(options["out"], "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot write {options['out']}: {exc.strerror}") from None
        count = 0
        try:
            for event in intelmq_events(campaign, since=since):
                out.write(json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n")
                count += 1
        finally:
            if not to_stdout:
                out.close()
        (sys.stderr if to_stdout else self.stdout).write(f"events={count}\n")
