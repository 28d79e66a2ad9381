import getpass
import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from campaign.roles import ROLES
from campaign.services import add_user


class Command(BaseCommand):
    help = "Create or update a user with a role. Password from DJANGO_USER_PASSWORD, else a prompt."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--agency", default=None)

    def handle(self, *args, **options):
        password = os.environ.get("DJANGO_USER_PASSWORD")
        if not password:
            if not os.isatty(0):
                raise CommandError("set DJANGO_USER_PASSWORD or run on a terminal to be prompted")
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("passwords differ")
        try:
            user = add_user(username=options["username"], role=options["role"],
                            password=password, agency_name=options["agency"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"user={user.username} role={options['role']}")
