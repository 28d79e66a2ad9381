"""receive_mail [--file PATH] [--dry-run] [--json]: one message that came back, as an MTA's
pipe transport (or a .forward) delivers it on stdin."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from letters.inbound.classify import MAX_MESSAGE_BYTES
from letters.inbound.receive import receive_raw


class Command(BaseCommand):
    help = ("Read one RFC 5322 message (a bounce, complaint, auto-reply or reply) from stdin "
            "or --file, classify it, match it to its letter and record it.")

    def add_arguments(self, parser):
        parser.add_argument("--file", help="read the message from this file, not stdin")
        parser.add_argument("--dry-run", action="store_true",
                            help="print the classification, change nothing")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, **options):
        try:
            if options["file"]:
                with open(options["file"], "rb") as handle:
                    raw = handle.read(MAX_MESSAGE_BYTES + 1)
            else:
                raw = sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)
        except OSError as exc:
            raise CommandError(f"cannot read {options['file']}: {exc.strerror}") from exc
        # Exit 0 whatever the message is: an MTA bounces mail its pipe refuses, and a bounce
        # of a bounce helps nobody. What could not be read is kept and reported instead.
        received = receive_raw(raw, source="pipe", dry_run=options["dry_run"])
        if received.error:
            self.stderr.write(f"unreadable message kept as unmatched: {received.error}")
        if options["json"]:
            self.stdout.write(json.dumps(received.as_json()))
        else:
            self.stdout.write(received.summary_line)
