from django.core.management.base import BaseCommand

from campaign.models import FeedFetch
from campaign.subscriptions import fetch_due


class Command(BaseCommand):
    help = (
        "Fetch the feed subscriptions that are due (--now: every active one) and import what "
        "changed. One line per failed feed on stderr; last line: "
        "fetched=N unchanged=N failed=N."
    )

    def add_arguments(self, parser):
        parser.add_argument("--now", action="store_true", help="ignore the schedules")
        parser.add_argument("--feed", type=int, action="append", metavar="ID",
                            help="only this subscription (repeatable)")

    def handle(self, *args, **options):
        started = FeedFetch.objects.order_by("-id").values_list("id", flat=True).first() or 0
        counts = fetch_due(now_all=options["now"], subscription_ids=options["feed"])
        for fetch in FeedFetch.objects.filter(id__gt=started, outcome=FeedFetch.FAILED):
            self.stderr.write(f"feed {fetch.subscription_id}: {fetch.error}")
        self.stdout.write(counts.summary_line)
