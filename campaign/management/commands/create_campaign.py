from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from campaign.agencies import set_partners
from campaign.cli import get_user
from campaign.services import create_campaign


class Command(BaseCommand):
    help = "Create a campaign (and its agency if new)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--agency", required=True, help="agency name (created if new)")
        parser.add_argument("--kinds", default="relay,proxy", help="relay, proxy or relay,proxy")
        parser.add_argument("--name", default="", help="display name (default: the slug)")
        parser.add_argument("--by", default=None, help="acting user (permission-checked)")
        parser.add_argument("--partners", default="",
                            help='partner agencies of a joint campaign: "Agency A,Agency B" '
                                 "(each created if new)")

    def handle(self, *args, **options):
        actor = get_user(options["by"])
        try:
            # One transaction: a refused partner list leaves no half-made campaign.
            with transaction.atomic():
                campaign = create_campaign(
                    slug=options["slug"], agency_name=options["agency"], kinds=options["kinds"],
                    name=options["name"], actor=actor,
                )
                if options["partners"].strip():
                    set_partners(campaign=campaign, names=options["partners"].split(","),
                                 actor=actor)
        except (ValidationError, ValueError, PermissionDenied) as exc:
            raise CommandError(_message(exc)) from None
        self.stdout.write(
            f"campaign={campaign.slug} agency={campaign.agency.name!r} "
            f"kinds={','.join(campaign.kind_names)}"
        )


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)
