"""follow_up --campaign SLUG [--now]: re-test notified hosts that are due."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from campaign.cli import ProgressBar, get_campaign, get_user
from letters import followup
from letters.tasks import follow_up_task


class Command(BaseCommand):
    help = "Re-test notified hosts whose follow-up delay has passed (closed → remediated)."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True)
        parser.add_argument("--now", action="store_true", help="ignore the follow-up delay")
        parser.add_argument("--by", help="user the probe run is recorded for")
        parser.add_argument("--background", action="store_true")

    def handle(self, *args, **options):
        campaign = get_campaign(options["campaign"])
        if options["background"]:
            self.stdout.write(f"job={follow_up_task.delay(campaign.pk).id}")
            return
        bar = ProgressBar("follow-up")
        done = [0]

        def progress(run, host, outcome) -> None:
            done[0] += 1
            bar.update(done[0], None, f"{done[0]} hosts re-tested")

        try:
            summary = followup.run_follow_up(
                campaign, ignore_delay=options["now"], actor=get_user(options["by"]),
                progress=progress,
            )
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        self.stdout.write(summary.line)
