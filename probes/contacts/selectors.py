"""Reads for abuse contacts: what the JSON outputs, pages and letters need."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Q

from probes.contacts.models import Contact, ContactRun, Suppression


def contact_counts(campaign) -> dict[str, int]:
    """{"resolved": hosts with a usable contact, "failed": hosts without one (yet)}."""
    counts = Contact.objects.filter(host__campaign=campaign).aggregate(
        resolved=Count("pk", filter=Q(status=Contact.RESOLVED)),
        failed=Count("pk", filter=~Q(status=Contact.RESOLVED)),
    )
    return {"resolved": counts["resolved"], "failed": counts["failed"]}


def host_contact(host) -> dict | None:
    """The host's contact for `show_host --json` and the host page, or None without one.

    `source` is rdap, whois or manual; `server` and `handle` say where in the registry
    the address was found.
    """
    contact = (
        Contact.objects.select_related("network").filter(host_id=host.pk).first()
    )
    if contact is None or not contact.email:
        return None
    return {
        "email": contact.email,
        "source": contact.source,
        "network": contact.network.display_range if contact.network else None,
        "confidence": contact.confidence,
        "language": contact.language,
        "status": contact.status,
        "organisation": contact.organisation,
        "country": contact.country,
        "server": contact.server,
        "handle": contact.handle,
        "fetched_at": contact.fetched_at.isoformat() if contact.fetched_at else None,
        "suppressed_by": (suppression_data(suppression_for(contact.email))
                          if contact.status == Contact.SUPPRESSED else None),
    }


def suppression_for(email: str) -> Suppression | None:
    """The entry that keeps letters from `email`: its address entry, else the closest domain."""
    address = (email or "").strip().lower()
    labels = address.rpartition("@")[2].split(".")
    domains = [".".join(labels[i:]) for i in range(len(labels) - 1)]
    found = {e.value: e for e in Suppression.objects.select_related("agency", "created_by")
             .filter(value__in=[address, *domains])}
    for candidate in (address, *domains):  # the address first, then the longest domain
        if candidate in found:
            return found[candidate]
    return None


def suppression_data(entry: Suppression | None) -> dict | None:
    """Who put an entry on the list and when (for JSON; the reason may name their letters)."""
    if entry is None:
        return None
    return {
        "value": entry.value,
        "kind": entry.kind,
        "source": entry.source,
        "agency": entry.agency.name if entry.agency else None,
        "by": entry.created_by.get_username() if entry.created_by else None,
        "created_at": entry.created_at.isoformat(),
    }


def latest_run(campaign) -> ContactRun | None:
    return ContactRun.objects.filter(campaign=campaign).first()


def is_suppressed(email: str) -> bool:
    """Whether an address (or its domain) is on the do-not-contact list."""
    return SuppressionList.load().matches(email)


class SuppressionList:
    """The do-not-contact list in memory, for checking many addresses in one run."""

    def __init__(self, entries: Iterable[Suppression]) -> None:
        self.addresses: dict[str, str] = {}
        self.domains: dict[str, str] = {}
        for entry in entries:
            target = self.addresses if entry.kind == Suppression.ADDRESS else self.domains
            target[entry.value.lower()] = entry.reason

    @classmethod
    def load(cls) -> SuppressionList:
        return cls(Suppression.objects.all())

    def match(self, email: str) -> str | None:
        """The entry that suppresses `email` ("addr" or "domain", with its reason), or None."""
        address = (email or "").strip().lower()
        if address in self.addresses:
            return f"{address}: {self.addresses[address]}"
        domain = address.rpartition("@")[2]
        labels = domain.split(".")
        # A domain entry covers its subdomains: mail.example.org under example.org.
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            if candidate in self.domains:
                return f"{candidate}: {self.domains[candidate]}"
        return None

    def matches(self, email: str) -> bool:
        return self.match(email) is not None
