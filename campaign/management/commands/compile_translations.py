"""Compile locale/*/LC_MESSAGES/*.po to .mo with Babel (no GNU gettext needed)."""

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Compile the .po translation catalogs in locale/ into .mo files."

    def handle(self, *args, **options):
        count = 0
        for locale_dir in settings.LOCALE_PATHS:
            for po_path in sorted(Path(locale_dir).glob("*/LC_MESSAGES/*.po")):
                try:
                    with po_path.open("rb") as po_file:
                        catalog = read_po(po_file, abort_invalid=True)
                except Exception as exc:
                    raise CommandError(f"{po_path}: {exc}") from exc
                with po_path.with_suffix(".mo").open("wb") as mo_file:
                    write_mo(mo_file, catalog)
                count += 1
        if options["verbosity"] > 0:
            self.stdout.write(f"compiled={count}")
