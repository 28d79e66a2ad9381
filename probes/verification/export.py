"""Verified findings as IntelMQ events, so a CERT's own pipeline can take them.

One event per host × check × port whose latest result is `open`, for hosts still open in the
campaign's eyes (verified and not since found closed or remediated). The abuse contact goes
in `source.abuse_contact` when one is resolved; the probe's variant in `extra.variant`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

from django.db.models import Max

from campaign import states
from campaign.models import Campaign
from probes.contacts.models import Contact
from probes.verification.models import ProbeResult

# Our checks as IntelMQ names them, and the application they speak.
CHECK_IDENTIFIERS: Mapping[str, tuple[str, str]] = {
    "smtp_relay": ("open-smtp-relay", "smtp"),
    "http_proxy": ("open-http-proxy", "http"),
    "socks4": ("open-socks4", "socks"),
    "socks5": ("open-socks5", "socks"),
}

STILL_OPEN = (states.VERIFIED_OPEN, states.CONTACT_RESOLVED, states.NO_CONTACT,
              states.NOTIFIED)


def finding_event(
    *, ip: str, port: int, check: str, seen_at: datetime, feed_name: str, provider: str,
    asn: int | None, country: str, abuse_contact: str, extra: Mapping[str, object],
) -> dict[str, object]:
    """One verified finding as an IntelMQ event (flat harmonization keys)."""
    identifier, application = CHECK_IDENTIFIERS[check]
    event: dict[str, object] = {
        "__type": "Event",
        "feed.name": feed_name,
        "feed.provider": provider,
        "feed.accuracy": 100.0,  # verified by a test of our own, not a third party's listing
        "classification.taxonomy": "vulnerable",
        "classification.type": "vulnerable-system",
        "classification.identifier": identifier,
        "protocol.application": application,
        "protocol.transport": "tcp",
        "source.ip": ip,
        "source.port": port,
        "time.source": seen_at.astimezone(UTC).isoformat(),
    }
    if asn:
        event["source.asn"] = asn
    if country:
        event["source.geolocation.cc"] = country
    if abuse_contact:
        event["source.abuse_contact"] = abuse_contact
    for key, value in extra.items():
        event[f"extra.{key}"] = value
    return event


def intelmq_events(campaign: Campaign, *, since: datetime | None = None
                   ) -> Iterator[dict[str, object]]:
    """The campaign's open findings as IntelMQ events, in host order; `since`: probed since."""
    results = ProbeResult.objects.filter(host__campaign=campaign,
                                         host__state__in=STILL_OPEN)
    latest = (results.values("host_id", "check_name", "port").annotate(latest=Max("id"))
              .values("latest"))
    rows = (
        ProbeResult.objects.filter(id__in=latest, verdict="open")
        .select_related("host", "host__contact")
        .only("check_name", "port", "variant", "started_at", "host__ip", "host__asn",
              "host__country", "host__contact__email", "host__contact__status")
        .order_by("host_id", "check_name", "port")
    )
    if since is not None:
        rows = rows.filter(started_at__gte=since)
    feed_name = f"Secure Your Server: {campaign.name}"
    provider = campaign.agency.name
    for result in rows.iterator(chunk_size=2000):
        host = result.host
        contact = getattr(host, "contact", None)
        email = contact.email if contact and contact.status == Contact.RESOLVED else ""
        yield finding_event(
            ip=str(host.ip), port=result.port, check=result.check_name,
            seen_at=result.started_at, feed_name=feed_name, provider=provider,
            asn=host.asn, country=host.country, abuse_contact=email,
            extra={"variant": result.variant} if result.variant else {},
        )
