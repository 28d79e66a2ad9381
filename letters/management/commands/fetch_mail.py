"""fetch_mail: poll the bounce mailbox (INBOUND_IMAP_URL) once."""

from __future__ import annotations

import imaplib

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from campaign.cli import ProgressBar
from letters.inbound.imap import fetch_mail


class Command(BaseCommand):
    help = ("Receive every message in the bounce mailbox (INBOUND_IMAP_URL) and move each to "
            "INBOUND_IMAP_DONE_FOLDER once recorded.")

    def handle(self, *args, **options):
        if not settings.INBOUND_IMAP_URL:
            raise CommandError("set INBOUND_IMAP_URL=imaps://user:password@host:port/MAILBOX")
        bar = ProgressBar("fetch_mail")
        try:
            summary = fetch_mail(progress=lambda done, total: bar.update(
                done, total, f"{done} of {total} messages"))
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        except (imaplib.IMAP4.error, OSError) as exc:
            raise CommandError(f"IMAP: {exc}") from exc
        finally:
            bar.close()
        self.stdout.write(summary.line)
