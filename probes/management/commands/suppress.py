"""Put an address or a whole domain on the do-not-contact list."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from probes.contacts import errors, suppression
from probes.management.commands._contacts_common import user_or_error


class Command(BaseCommand):
    help = ("Never write to ADDRESS (or to any address at DOMAIN and its subdomains); "
            "--remove takes an entry off the list again.")

    def add_arguments(self, parser):
        parser.add_argument("value", metavar="ADDRESS_OR_DOMAIN")
        parser.add_argument("--by", required=True, metavar="USERNAME")
        parser.add_argument("--reason", required=True)
        parser.add_argument("--remove", action="store_true",
                            help="take ADDRESS_OR_DOMAIN off the list (only the agency that "
                                 "added it, or an admin bound to no agency)")

    def handle(self, *args, **options):
        actor = user_or_error(options["by"])
        if options["remove"]:
            try:
                done = suppression.unsuppress(value=options["value"], actor=actor,
                                           reason=options["reason"])
            except (PermissionDenied, errors.ContactError) as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(done.line)
            return
        try:
            entry = suppression.suppress(value=options["value"], actor=actor,
                                      reason=options["reason"])
        except (PermissionDenied, errors.ContactError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"suppressed={entry.value} kind={entry.kind}")
