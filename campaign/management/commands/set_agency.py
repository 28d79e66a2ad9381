"""set_agency NAME [--country CC] [--jurisdiction CC,CC] [--sender EMAIL] [--reply-to EMAIL]"""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from campaign.agencies import set_agency
from campaign.cli import get_user


class Command(BaseCommand):
    help = ("Create or update an agency: its country, the countries whose hosts it writes to in "
            "joint campaigns, and its sender addresses. Options not given stay as they are.")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--country", help="ISO 3166-1 alpha-2 code of the agency's country")
        parser.add_argument("--jurisdiction",
                            help="comma-separated country codes (replaces the list; '' clears)")
        parser.add_argument("--sender", help="From: address of its letters")
        parser.add_argument("--reply-to", dest="reply_to", help="Reply-To: address of its letters")
        parser.add_argument("--by", default=None, help="acting user (recorded in the audit log)")

    def handle(self, *args, **options):
        jurisdiction = options["jurisdiction"]
        try:
            agency = set_agency(
                name=options["name"], country=options["country"],
                jurisdiction=jurisdiction.split(",") if jurisdiction is not None else None,
                sender_email=options["sender"], reply_to=options["reply_to"],
                actor=get_user(options["by"]),
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(
            f"agency={agency.name!r} country={agency.country or '-'} "
            f"jurisdiction={','.join(agency.jurisdiction) or '-'} "
            f"sender={agency.sender_email or '-'} reply_to={agency.reply_to or '-'}"
        )
