"""letters_batch create|submit|approve|reject|send|pdf|posted|returned|release: the batch
workflow from the shell."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from campaign.cli import ProgressBar, get_campaign, get_user
from campaign.models import Agency
from letters import batches, errors, sending, states
from letters.models import Batch, Letter
from letters.postal import services as postal
from letters.tasks import send_batch_task


class Command(BaseCommand):
    help = "Build, review and send letter batches (same four-eyes checks as the web)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="build a draft batch from a campaign")
        create.add_argument("--campaign", required=True)
        create.add_argument("--by", required=True)
        create.add_argument("--language")
        create.add_argument("--country")
        create.add_argument("--max", type=int, dest="max_letters")
        create.add_argument("--agency", help="joint campaigns, for users bound to no agency: "
                                             "the participating agency to build for")
        for name in ("submit", "approve", "reject"):
            action = sub.add_parser(name)
            action.add_argument("batch_id", type=int)
            action.add_argument("--by", required=True)
            action.add_argument("--comment", default="", required=name == "reject")
        send = sub.add_parser("send", help="send an approved batch")
        send.add_argument("batch_id", type=int)
        send.add_argument("--by")
        send.add_argument("--background", action="store_true",
                          help="queue the sending for the Celery workers")

        pdf = sub.add_parser("pdf", help="the approved batch's postal letters as one "
                                         "print-ready PDF (and their addresses as CSV)")
        pdf.add_argument("batch_id", type=int)
        pdf.add_argument("--out", required=True, help="where to write the PDF")
        pdf.add_argument("--csv", help="also write the addresses (mail merge) here")
        pdf.add_argument("--by")
        posted = sub.add_parser("posted", help="mark the batch's printed letters as posted")
        posted.add_argument("batch_id", type=int)
        posted.add_argument("--by", required=True)
        posted.add_argument("--date", type=_day, help="the day they left (default today)")
        posted.add_argument("--letter", type=int, action="append", dest="letters",
                            help="only this letter (repeatable)")
        returned = sub.add_parser("returned", help="a posted letter came back from the post")
        returned.add_argument("letter_id", type=int)
        returned.add_argument("--by", required=True)
        returned.add_argument("--reason", required=True,
                              help="what the post says, e.g. 'addressee unknown'")
        returned.add_argument("--date", type=_day, help="the day it came back (default today)")

        release = sub.add_parser(
            "release", help="put an unconfirmed letter (its worker died mid-send) back in the "
                            "queue, after checking the mail server's log that it did not leave")
        release.add_argument("letter_id", type=int)
        release.add_argument("--by", required=True)
        release.add_argument("--reason", required=True)

    def handle(self, *args, **options):
        try:
            return getattr(self, f"do_{options['action']}")(options)
        except (PermissionDenied, errors.LetterError, states.IllegalTransition) as exc:
            raise CommandError(str(exc)) from None

    def _batch(self, batch_id: int) -> Batch:
        try:
            return Batch.objects.select_related("campaign").get(pk=batch_id)
        except Batch.DoesNotExist:
            raise CommandError(f"no batch {batch_id}") from None

    def do_create(self, options):
        agency = None
        if options["agency"]:
            agency = Agency.objects.filter(name=options["agency"].strip()).first()
            if agency is None:
                raise CommandError(f"no agency {options['agency']!r}")
        batch = batches.build_batch(
            campaign=get_campaign(options["campaign"]), actor=get_user(options["by"]),
            language=options["language"], country=options["country"],
            max_letters=options["max_letters"], agency=agency,
        )
        self.stdout.write(f"batch={batch.pk} letters={batch.letters.count()}")

    def _review(self, options, service):
        batch = self._batch(options["batch_id"])
        user = get_user(options["by"])
        kwargs = {"batch": batch, "actor": user, "comment": options["comment"]}
        batch = service(**kwargs)
        self.stdout.write(f"batch={batch.pk} state={batch.state}")

    def do_submit(self, options):
        self._review(options, batches.submit_batch)

    def do_approve(self, options):
        self._review(options, batches.approve_batch)

    def do_reject(self, options):
        self._review(options, batches.reject_batch)

    def do_send(self, options):
        batch = self._batch(options["batch_id"])
        actor = get_user(options["by"]) if options["by"] else None
        if options["background"]:
            sending.start_sending(batch=batch, actor=actor)
            result = send_batch_task.delay(batch.pk)
            self.stdout.write(f"job={result.id}")
            return
        bar = ProgressBar(f"batch {batch.pk}")
        summary = sending.send_batch(
            batch=batch, actor=actor, progress=lambda done, total: bar.update(done, total)
        )
        bar.close()
        if summary.cancelled:
            self.stderr.write(f"cancelled={summary.cancelled} (suppressed or no longer open)")
        if summary.waiting:
            self.stderr.write(f"waiting={summary.waiting} (business days only in the "
                              "recipient's time zone; still queued: send again later)")
        if summary.unconfirmed:
            self.stderr.write(
                f"unconfirmed={summary.unconfirmed}: a worker stopped mid-send; check the mail "
                "server's log before releasing them with `letters_batch release LETTER_ID` "
                "(they are not sent again on their own): "
                + " ".join(str(pk) for pk in batch.letters.filter(
                    state=states.QUEUED, claimed_at__isnull=False).values_list("pk", flat=True))
            )
        self.stdout.write(summary.line)

    def do_pdf(self, options):
        batch = self._batch(options["batch_id"])
        actor = get_user(options["by"]) if options["by"] else None
        printed = postal.print_batch(batch=batch, actor=actor)
        _write(options["out"], printed.data)
        if options["csv"]:
            _write(options["csv"], postal.batch_addresses_csv(batch=batch, actor=actor).encode())
        self.stdout.write(f"pages={printed.pages} letters={printed.letters}")

    def do_posted(self, options):
        batch = self._batch(options["batch_id"])
        moved = postal.mark_posted(batch=batch, actor=get_user(options["by"]),
                                   posted_on=options["date"], letter_ids=options["letters"])
        self.stdout.write(f"batch={batch.pk} posted={moved}")

    def do_returned(self, options):
        letter = Letter.objects.filter(pk=options["letter_id"]).first()
        if letter is None:
            raise CommandError(f"no letter {options['letter_id']}")
        letter = postal.mark_returned(letter=letter, actor=get_user(options["by"]),
                                      reason=options["reason"], returned_on=options["date"])
        self.stdout.write(f"letter={letter.pk} state={letter.state}")

    def do_release(self, options):
        letter = Letter.objects.filter(pk=options["letter_id"]).first()
        if letter is None:
            raise CommandError(f"no letter {options['letter_id']}")
        if not options["reason"].strip():
            raise CommandError("--reason must say what the mail server's log showed")
        released = sending.release_claim(letter=letter, actor=get_user(options["by"]),
                                          reason=options["reason"].strip())
        if not released:
            claimed = "claimed" if letter.claimed_at else "not claimed"
            raise CommandError(f"letter {letter.pk} is not waiting for a person "
                               f"(state {letter.state}, {claimed})")
        self.stdout.write(f"letter={letter.pk} released=1")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _write(path: str, data: bytes) -> None:
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
