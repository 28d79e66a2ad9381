from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from campaign.cli import ProgressBar, get_campaign, get_user
from campaign.feeds.parsers import FORMATS, FormatError
from campaign.imports import create_import, run_import
from campaign.outbound import FetchError
from campaign.tasks import run_import_task


class Command(BaseCommand):
    help = (
        "Import suspected hosts from a blocklist feed (file or http(s) URL). Last line: "
        "lines=N added=N known=N rejected=N (added: new hosts; known: hosts already in the "
        "campaign; rejected: lines refused with a reason; comments and blank lines count only "
        "in lines; in-file duplicates are reported but not rejected)."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", metavar="PATH_OR_URL")
        parser.add_argument("--campaign", required=True)
        parser.add_argument("--format", default="auto", choices=("auto", *FORMATS))
        parser.add_argument("--kind", choices=("relay", "proxy"), default=None)
        parser.add_argument("--by", default=None, help="acting user (permission-checked)")
        parser.add_argument("--background", action="store_true",
                            help="queue for the Celery workers and print the job id")
        parser.add_argument("--show-rejected", action="store_true",
                            help="print each rejected or duplicate line before the summary")

    def handle(self, *args, **options):
        campaign = get_campaign(options["campaign"])
        try:
            feed_import = create_import(
                campaign=campaign, actor=get_user(options["by"]), source=options["source"],
                fmt=options["format"], kind=options["kind"],
            )
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError(
                "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            ) from None
        if options["background"]:
            result = run_import_task.delay(feed_import.pk)
            self.stdout.write(f"import={feed_import.pk} job={result.id}")
            return
        bar = ProgressBar(f"import #{feed_import.pk}")
        try:
            feed_import = run_import(
                feed_import.pk,
                progress=lambda fi: bar.update(fi.bytes_read, fi.bytes_total, f"{fi.lines} lines"),
            )
        except (FormatError, FetchError, OSError) as exc:
            bar.close()
            raise CommandError(f"import #{feed_import.pk} failed: {exc}") from None
        bar.close()
        if options["show_rejected"]:
            for issue in feed_import.issues.order_by("line_no"):
                self.stdout.write(f"line {issue.line_no}: {issue.reason}: {issue.message}: "
                                  f"{issue.content}")
        self.stdout.write(feed_import.summary_line)
