"""Resolve the abuse contacts of a campaign's verified hosts (RDAP, then WHOIS)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from probes.contacts import errors, resolving, tasks
from probes.contacts.models import ContactRun
from probes.management.commands._contacts_common import campaign_or_error, user_or_error


class Command(BaseCommand):
    help = (
        "Find the abuse contact of each verified_open host without a fresh contact (--all: "
        "every host). Prints hosts=N resolved=N failed=N queries=N."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, metavar="SLUG")
        parser.add_argument("--all", action="store_true", help="every host of the campaign")
        parser.add_argument("--background", action="store_true",
                            help="queue the work for the workers and print the job id")
        parser.add_argument("--by", metavar="USERNAME", help="act for this user (checked)")

    def handle(self, *args, **options):
        campaign = campaign_or_error(options["campaign"])
        actor = user_or_error(options["by"]) if options["by"] else None
        mode = ContactRun.ALL if options["all"] else ContactRun.PENDING
        try:
            run = resolving.create_contact_run(campaign, mode=mode, actor=actor)
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        if options["background"]:
            job = tasks.run_contact_run_task.apply_async(args=[run.pk])
            ContactRun.objects.filter(pk=run.pk).update(task_id=job.id)
            self.stdout.write(f"job={job.id}")
            return
        show = options["verbosity"] > 0 and self.stderr.isatty()

        def progress(done: int, total: int, summary: resolving.ResolveSummary) -> None:
            if show and total:
                width = 30
                filled = width * done // total
                self.stderr.write(
                    f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} hosts, "
                    f"{summary.queries} queries", ending="",
                )

        try:
            finished = resolving.run_contact_run(run.pk, progress=progress)
        except errors.ContactError as exc:
            raise CommandError(str(exc)) from None
        if show:
            self.stderr.write("")
        if finished is None:
            raise CommandError(f"contact run #{run.pk} was taken by another worker")
        self.stdout.write(finished.summary_line)
