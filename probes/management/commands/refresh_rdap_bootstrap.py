"""Fetch IANA's RDAP bootstrap files (ipv4.json, ipv6.json) from RDAP_BOOTSTRAP_URL."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from probes.contacts import bootstrap, errors


class Command(BaseCommand):
    help = (
        "Refresh the stored RDAP bootstrap from RDAP_BOOTSTRAP_URL. The snapshot shipped "
        "with the code stays the fall-back if this fails."
    )

    def handle(self, *args, **options):
        try:
            counts = bootstrap.refresh_bootstrap()
        except errors.ContactError as exc:
            raise CommandError(f"{exc} (keeping the previous bootstrap)") from None
        self.stdout.write(
            f"ipv4={counts['ipv4.json']} ipv6={counts['ipv6.json']} "
            f"stored={bootstrap.bootstrap_dir()} from={settings.RDAP_BOOTSTRAP_URL}"
        )
