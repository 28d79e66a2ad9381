"""Read-side summaries behind `campaign_status --json` and `show_host --json`.

Each feature app contributes its own key through a selector of its own; this module only
assembles them, so the JSON shapes in COMMANDS.md live in one place.
"""

from __future__ import annotations

from django.db.models import Count, Sum

from campaign import kinds, states
from campaign.models import Campaign, FeedImport, Host


def host_counts(campaign: Campaign) -> dict:
    by_state = dict.fromkeys(states.HOST_STATES, 0)
    for row in Host.objects.filter(campaign=campaign).values("state").annotate(n=Count("id")):
        by_state[row["state"]] = row["n"]
    return {"total": sum(by_state.values()), "by_state": by_state}


def import_counts(campaign: Campaign) -> dict:
    imports = FeedImport.objects.filter(campaign=campaign)
    by_status = dict.fromkeys([s for s, _ in FeedImport.STATUS_CHOICES], 0)
    for row in imports.values("status").annotate(n=Count("id")):
        by_status[row["status"]] = row["n"]
    totals = imports.filter(status=FeedImport.DONE).aggregate(
        lines=Sum("lines"), added=Sum("added"), known=Sum("known"), rejected=Sum("rejected")
    )
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        **{key: value or 0 for key, value in totals.items()},
    }


def campaign_status(campaign: Campaign) -> dict:
    status = {
        "campaign": campaign.slug,
        "agency": campaign.agency.name,
        "kinds": campaign.kind_names,
        "hosts": host_counts(campaign),
        "imports": import_counts(campaign),
    }
    for key, selector in _feature_selectors("campaign"):
        status[key] = selector(campaign)
    return status


def host_detail(host: Host) -> dict:
    sightings = list(
        host.sightings.select_related("feed_import__feed").order_by("seen_at", "id")[:500]
    )
    ports = sorted(set(host.sightings.exclude(port=None).values_list("port", flat=True)))
    detail = {
        "ip": host.ip,
        "state": host.state,
        "kinds": kinds.kind_names(host.kinds),
        "ports": ports,
        "country": host.country or None,
        "asn": host.asn,
        "first_seen": host.first_seen.isoformat(),
        "last_seen": host.last_seen.isoformat(),
        "sightings": [
            {
                "feed": s.feed_import.feed.name,
                "import": s.feed_import_id,
                "line": s.line_no,
                "seen_at": s.seen_at.isoformat(),
                "port": s.port,
                "kind": ",".join(kinds.kind_names(s.kind)),
                "tag": s.tag,
            }
            for s in sightings
        ],
    }
    for key, selector in _feature_selectors("host"):
        detail[key] = selector(host)
    return detail


def _feature_selectors(scope: str):
    """(json key, selector) pairs contributed by the probes and letters apps."""
    from letters import selectors as letter_selectors
    from probes.contacts import selectors as contact_selectors
    from probes.verification import selectors as probe_selectors

    if scope == "campaign":
        return [
            ("probes", probe_selectors.probe_counts),
            ("contacts", contact_selectors.contact_counts),
            ("letters", letter_selectors.letter_counts),
        ]
    return [
        ("probes", probe_selectors.host_probes),
        ("contact", contact_selectors.host_contact),
        ("letters", letter_selectors.host_letters),
    ]
