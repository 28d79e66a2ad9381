"""probe_hosts: verify a campaign's hosts (the same code the workers run)."""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from campaign.models import Campaign
from probes.tasks import queue_probe_run
from probes.verification import services


class Command(BaseCommand):
    help = (
        "Probe a campaign's hosts for open SMTP relays and open proxies. Prints one line per "
        "check, `IP CHECK PORT VERDICT [VARIANT]`, then `probed=N open=N not_open=N "
        "unreachable=N error=N`, where probed counts HOSTS and the other numbers are hosts by "
        "their overall verdict: open if any check was open, unreachable if every check was, "
        "not_open if some check was refused, error if the checks only met protocol garbage. "
        "--background queues the run for the Celery workers and prints `run=ID`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, metavar="SLUG")
        parser.add_argument("--state", help="only hosts in this state (default: every host)")
        parser.add_argument("--limit", type=int, help="at most N hosts (lowest ids first)")
        parser.add_argument("--background", action="store_true",
                            help="queue the run for the workers and print its id")
        parser.add_argument("--by", metavar="USERNAME", help="the person starting the run")

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign with slug {options['campaign']!r}")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be a positive number")
        actor = None
        if options["by"]:
            actor = get_user_model().objects.filter(username=options["by"]).first()
            if actor is None:
                raise CommandError(f"no user {options['by']!r}")
        try:
            run = services.create_probe_run(
                campaign, actor=actor, state=options["state"], limit=options["limit"]
            )
        except (ValueError, PermissionDenied) as exc:
            raise CommandError(str(exc)) from exc

        if options["background"]:
            queue_probe_run(run)
            self.stdout.write(f"run={run.pk}")
            return

        show_bar = sys.stderr.isatty()

        def progress(run, host, outcome):
            for o in outcome.outcomes:
                line = f"{host.ip} {o.check} {o.port} {o.verdict}"
                self.stdout.write(f"{line} {o.variant}" if o.variant else line)
            if outcome.refused:
                self.stderr.write(f"{host.ip}: {outcome.refused}")
            if show_bar:
                run.refresh_from_db(fields=["done", "total"])
                sys.stderr.write(f"\r{run.done}/{run.total} hosts")
                sys.stderr.flush()

        run = services.run_probe_run(run, progress)
        if show_bar:
            sys.stderr.write("\n")
        self.stdout.write(run.summary_line)
