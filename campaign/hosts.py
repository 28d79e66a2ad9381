"""Host state changes: the only place that writes `Host.state`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.db import transaction
from django.utils import timezone

from campaign import states
from campaign.audit import record
from campaign.models import Host
from campaign.signals import hosts_changed_on_commit


def transition_host(
    host: Host, target: str, *, actor=None, reason: str = "", data: dict | None = None,
    after_bounce: bool = False,
) -> bool:
    """Move one host to `target` if the lifecycle allows it from its current state.

    A conditional UPDATE on the state we read makes this safe against a concurrent worker:
    returns False (and changes nothing) if the row moved meanwhile. Raises IllegalTransition
    if the move is not allowed from the state we read (`after_bounce`: also the moves of
    states.AFTER_BOUNCE, the fallback chain's).
    """
    if host.state == target:
        return False
    states.check_transition(host.state, target, after_bounce=after_bounce)
    now = timezone.now()
    fields = {"state": target, "state_changed_at": now}
    if target == states.REMEDIATED:
        fields["remediated_at"] = now
    with transaction.atomic():
        moved = Host.objects.filter(pk=host.pk, state=host.state).update(**fields)
        if moved != 1:
            return False
        record(
            "host.transition",
            actor=actor,
            campaign_id=host.campaign_id,
            obj=host,
            data={"from": host.state, "to": target, "reason": reason, **(data or {})},
        )
    # The dashboard's cached counts are of the old state (campaign.dashboard).
    hosts_changed_on_commit(host.campaign_id)
    for name, value in fields.items():
        setattr(host, name, value)
    return True


def fill_countries(campaign_id: int, countries: Mapping[int, str]) -> int:
    """Give hosts that have no country yet the one given ({host id: ISO code}).

    A host's country comes from the feed first, then from its abuse contact's network (RDAP or
    WHOIS): only hosts whose country is still empty are written, so a feed's country is never
    replaced. Not a state, so not audited per host: the contact says where it came from.
    Returns the number of hosts written.
    """
    by_country: dict[str, list[int]] = {}
    for host_id, country in countries.items():
        if country:
            by_country.setdefault(country.upper(), []).append(host_id)
    written = 0
    # One UPDATE per country (a chunk spans a few): the empty-country test in the same
    # statement keeps a feed's country that arrived meanwhile.
    for country, ids in by_country.items():
        written += Host.objects.filter(
            pk__in=ids, campaign_id=campaign_id, country=""
        ).update(country=country)
    if written:
        # Its by-country counts moved (the dashboard's, the report's).
        hosts_changed_on_commit(campaign_id)
    return written


def transition_hosts(host_ids: Iterable[int], target: str, *, reason: str = "") -> int:
    """Bulk move: every listed host whose current state allows `target`. Returns the count."""
    ids = list(host_ids)
    if not ids:
        return 0
    now = timezone.now()
    fields = {"state": target, "state_changed_at": now}
    if target == states.REMEDIATED:
        fields["remediated_at"] = now
    moved = Host.objects.filter(pk__in=ids, state__in=states.sources_for(target)).update(**fields)
    if moved:
        hosts_changed_on_commit(None)  # the ids may span campaigns
    return moved


def bulk_transition(host_ids: Iterable[int], target: str, reason: str, *, actor=None,
                    sources: Iterable[str] | None = None) -> int:
    """Move the hosts that may go to `target` (from `sources` only, if given); audited.

    One audit event per campaign, not per host: a million-host campaign stays writable, and
    a suppression (which spans campaigns) shows in each campaign's own log.
    """
    host_ids = list(host_ids)
    if not host_ids:
        return 0
    allowed = states.sources_for(target)
    if sources is not None:
        allowed = allowed & frozenset(sources)
    movable = list(
        Host.objects.filter(pk__in=host_ids, state__in=allowed).values_list("pk", "campaign_id")
    )
    by_campaign: dict[int, list[int]] = {}
    for pk, campaign_id in movable:
        by_campaign.setdefault(campaign_id, []).append(pk)
    total = 0
    for campaign_id, ids in by_campaign.items():
        moved = transition_hosts(ids, target, reason=reason)
        if moved:
            total += moved
            record("host.transition_bulk", actor=actor, campaign_id=campaign_id,
                   data={"to": target, "reason": reason, "count": moved, "host_ids": ids})
    return total
