from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from campaign.cli import get_campaign, get_user
from campaign.feeds.parsers import FORMATS
from campaign.subscriptions import subscribe


class Command(BaseCommand):
    help = (
        "Subscribe a campaign to a feed URL fetched on a schedule (conditional GET; new "
        "content is imported). Subscribing the same URL again changes its schedule. Last "
        "line: feed=ID next_fetch=ISO8601."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True)
        parser.add_argument("--url", required=True)
        parser.add_argument("--format", default="auto", choices=("auto", *FORMATS))
        parser.add_argument("--kind", choices=("relay", "proxy"), default=None)
        schedule = parser.add_mutually_exclusive_group(required=True)
        schedule.add_argument("--every", metavar="INTERVAL",
                              help="e.g. 15m, 6h, 1d, 1h30m")
        schedule.add_argument("--cron", metavar="EXPRESSION",
                              help='five cron fields in UTC, e.g. "0 */6 * * *"')
        parser.add_argument("--auth-secret", default="", metavar="FEED_AUTH_NAME",
                            help="environment variable holding 'Header-Name: value' to send")
        parser.add_argument("--by", default=None, help="acting user (permission-checked)")

    def handle(self, *args, **options):
        campaign = get_campaign(options["campaign"])
        try:
            subscription = subscribe(
                campaign=campaign, url=options["url"], fmt=options["format"],
                kind=options["kind"], every=options["every"], cron=options["cron"],
                auth_secret=options["auth_secret"], actor=get_user(options["by"]),
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"feed={subscription.pk} "
                          f"next_fetch={subscription.next_fetch_at.isoformat(timespec='seconds')}")
