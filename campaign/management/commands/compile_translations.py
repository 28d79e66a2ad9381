"""Compile locale/*/LC_MESSAGES/*.po to .mo with Babel (no GNU gettext needed)."""

import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Compile the .po translation catalogs in locale/ into .mo files."
    # The catalogs check (letters.catalogs) fails until this has run: it must not stop it.
    requires_system_checks: list[str] = []

    def handle(self, *args, **options):
        count = 0
        for locale_dir in settings.LOCALE_PATHS:
            for po_path in sorted(Path(locale_dir).glob("*/LC_MESSAGES/*.po")):
                try:
                    with po_path.open("rb") as po_file:
                        catalog = read_po(po_file, abort_invalid=True)
                except Exception as exc:
                    raise CommandError(f"{po_path}: {exc}") from exc
                # Written aside, then renamed: a running web app or worker (and the catalogs
                # check) reads the old catalog or the new one, never half of one.
                mo_path = po_path.with_suffix(".mo")
                fd, tmp_name = tempfile.mkstemp(dir=mo_path.parent, prefix=".django.mo.")
                try:
                    with os.fdopen(fd, "wb") as mo_file:
                        write_mo(mo_file, catalog)
                    os.chmod(tmp_name, 0o644)  # mkstemp's 0600 would hide it from the app user
                    os.replace(tmp_name, mo_path)
                except BaseException:
                    Path(tmp_name).unlink(missing_ok=True)
                    raise
                count += 1
        if options["verbosity"] > 0:
            self.stdout.write(f"compiled={count}")
