"""Reads for the staff pages: each page asks for what it shows in a fixed, small number of
queries, whatever the size of the campaign (no N+1, no COUNT(*) over all hosts per page)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.db.models import BooleanField, Max, QuerySet
from django.db.models.expressions import RawSQL
from django.http import Http404

from campaign import kinds
from campaign.models import (
    Campaign,
    FeedFetch,
    FeedImport,
    FeedSubscription,
    Host,
    ImportLineIssue,
    Sighting,
)
from campaign.services import visible_campaigns

IPQuery = (
    ipaddress.IPv4Address | ipaddress.IPv6Address | ipaddress.IPv4Network | ipaddress.IPv6Network
)

def campaign_for(user, slug: str) -> Campaign:
    """The campaign with this slug if the user may see it; 404 otherwise (no existence leak)."""
    campaign = visible_campaigns(user).filter(slug=slug).first()
    if campaign is None:
        raise Http404("no such campaign")
    return campaign


@dataclass(frozen=True, slots=True)
class FunnelStep:
    key: str
    label: str
    count: int
    percent: float  # of all imported hosts


@dataclass(frozen=True, slots=True)
class StateCount:
    state: str
    label: str
    count: int
    percent: float


@dataclass(frozen=True, slots=True)
class CampaignCounts:
    total: int
    by_state: list[StateCount]
    funnel: list[FunnelStep]


def recent_imports(campaign: Campaign, *, limit: int = 10) -> list[FeedImport]:
    return list(
        FeedImport.objects.filter(campaign=campaign)
        .select_related("feed", "created_by")
        .order_by("-created_at", "-id")[:limit]
    )


def running_imports(campaign: Campaign) -> list[FeedImport]:
    return list(
        FeedImport.objects.filter(
            campaign=campaign, status__in=[FeedImport.QUEUED, FeedImport.RUNNING]
        ).select_related("feed").order_by("created_at")[:20]
    )


def import_for(campaign: Campaign, pk: int) -> FeedImport:
    feed_import = (
        FeedImport.objects.select_related("feed", "created_by")
        .filter(campaign=campaign, pk=pk)
        .first()
    )
    if feed_import is None:
        raise Http404("no such import")
    return feed_import


def subscriptions(campaign: Campaign) -> list[FeedSubscription]:
    """The campaign's feed subscriptions, each with its last fetch (`last`), failing first."""
    rows = list(FeedSubscription.objects.filter(campaign=campaign)
                .order_by("-active", "-failures", "id")[:200])
    last = {f.subscription_id: f for f in FeedFetch.objects.filter(
        id__in=FeedFetch.objects.filter(subscription__campaign=campaign)
        .values("subscription_id").annotate(latest=Max("id")).values("latest"))
        .select_related("feed_import")}
    for row in rows:
        row.last = last.get(row.pk)
    return rows


def subscription_for(campaign: Campaign, pk: int) -> FeedSubscription:
    subscription = FeedSubscription.objects.filter(campaign=campaign, pk=pk).first()
    if subscription is None:
        raise Http404("no such feed subscription")
    return subscription


def subscription_fetches(subscription: FeedSubscription, *, limit: int = 50) -> list[FeedFetch]:
    return list(subscription.fetches.select_related("feed_import").order_by("-id")[:limit])


def import_issues(feed_import: FeedImport) -> QuerySet[ImportLineIssue]:
    return ImportLineIssue.objects.filter(feed_import=feed_import).order_by("line_no", "id")


def parse_ip_query(text: str) -> IPQuery:
    """An address or a network (`203.0.113.0/24`); raises ValueError for anything else."""
    text = text.strip()
    if "/" in text:
        return ipaddress.ip_network(text, strict=False)
    return ipaddress.ip_address(text)


def _filter_ip(qs: QuerySet[Host], query: IPQuery) -> QuerySet[Host]:
    if isinstance(query, ipaddress.IPv4Network | ipaddress.IPv6Network):
        if query.num_addresses == 1:
            return qs.filter(ip=str(query.network_address))
        # inet <<= cidr is index-assisted on the (campaign, ip) B-tree: PostgreSQL turns it
        # into a range scan, so a /24 among a million hosts reads only that range.
        # The network is a bound parameter, never spliced into the SQL.
        contained = RawSQL(  # noqa: S611
            f'{Host._meta.db_table}."ip" <<= %s::cidr', (str(query),),
            output_field=BooleanField(),
        )
        return qs.filter(contained)
    return qs.filter(ip=str(query))


def filter_hosts(
    campaign: Campaign,
    *,
    state: str = "",
    kind: str = "",
    country: str = "",
    ip: IPQuery | None = None,
) -> QuerySet[Host]:
    qs = Host.objects.filter(campaign=campaign)
    if state:
        qs = qs.filter(state=state)
    if kind:
        bit = kinds.KIND_BITS[kind]
        # Only two bits exist, so "has this bit" is a short IN list the planner handles well.
        qs = qs.filter(kinds__in=[m for m in range(1, 4) if m & bit])
    if country:
        qs = qs.filter(country=country.upper())
    if ip is not None:
        qs = _filter_ip(qs, ip)
    return qs


@dataclass(frozen=True, slots=True)
class HostPage:
    hosts: list[Host]
    next_after: int | None  # pass as ?after= for the next page
    prev_before: int | None  # pass as ?before= for the previous page


def host_page(
    qs: QuerySet[Host], *, after: int | None = None, before: int | None = None, size: int = 50
) -> HostPage:
    """Keyset pagination by id: each page is one indexed range read of size+1 rows.

    OFFSET pagination (and its COUNT(*)) gets slower the deeper you go into a million rows;
    "id > last seen id" costs the same on page 1 and page 20,000.
    """
    qs = qs.only("id", "ip", "kinds", "state", "country", "asn", "last_seen")
    if before is not None:
        rows = list(qs.filter(id__lt=before).order_by("-id")[: size + 1])
        more_before = len(rows) > size
        rows = rows[:size][::-1]
        return HostPage(
            hosts=rows,
            next_after=rows[-1].id if rows else None,
            prev_before=rows[0].id if rows and more_before else None,
        )
    if after is not None:
        qs = qs.filter(id__gt=after)
    rows = list(qs.order_by("id")[: size + 1])
    more_after = len(rows) > size
    rows = rows[:size]
    return HostPage(
        hosts=rows,
        next_after=rows[-1].id if rows and more_after else None,
        prev_before=rows[0].id if rows and after is not None else None,
    )


def host_by_ip(campaign: Campaign, ip_text: str) -> Host:
    try:
        ip = ipaddress.ip_address(ip_text)
    except ValueError:
        raise Http404("not an IP address") from None
    host = Host.objects.filter(campaign=campaign, ip=str(ip)).first()
    if host is None:
        raise Http404("no such host in this campaign")
    return host


@dataclass(frozen=True, slots=True)
class HostDetail:
    host: Host
    ports: list[int]
    sightings: list[Sighting]
    sightings_total: int


def host_detail(host: Host, *, sightings_limit: int = 200) -> HostDetail:
    sightings = list(
        Sighting.objects.filter(host=host)
        .select_related("feed_import__feed")
        .order_by("-seen_at", "-id")[:sightings_limit]
    )
    total = len(sightings)
    if total == sightings_limit:
        total = Sighting.objects.filter(host=host).count()
    ports = sorted(
        Sighting.objects.filter(host=host)
        .exclude(port=None)
        .order_by()
        .values_list("port", flat=True)
        .distinct()
    )
    return HostDetail(host=host, ports=ports, sightings=sightings, sightings_total=total)
