"""Set a host's abuse contact by hand (kept with who and why)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from probes.contacts import errors, overrides
from probes.management.commands._contacts_common import campaign_or_error, user_or_error


class Command(BaseCommand):
    help = "Override the abuse contact of one host; later look-ups keep it."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, metavar="SLUG")
        parser.add_argument("--ip", required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument("--language", help="letter language, e.g. de, pt-BR, zh-Hant")
        parser.add_argument("--by", required=True, metavar="USERNAME")
        parser.add_argument("--reason", required=True)

    def handle(self, *args, **options):
        campaign = campaign_or_error(options["campaign"])
        actor = user_or_error(options["by"])
        try:
            contact = overrides.set_contact(
                campaign=campaign, ip=options["ip"], email=options["email"], actor=actor,
                reason=options["reason"], language=options["language"],
            )
        except (PermissionDenied, errors.ContactError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"host={contact.host.ip} email={contact.email} language={contact.language} "
            f"source=manual"
        )
