"""What the campaign dashboard shows: the funnel, charts over time and by country, open work.

Every figure is an aggregate computed in SQL (GROUP BY, TruncDate) with a bounded result (a
fixed number of days, states and countries), so the page costs the same fixed number of
queries for ten hosts or a million.

Counting a million hosts by country and state, and their letters, takes ~0.4 s, so a large
campaign's aggregates (DASHBOARD_CACHE_MIN_HOSTS and more) are cached:

- a fresh copy for DASHBOARD_CACHE_SECONDS, dropped by host transitions and finished imports
  (`invalidate`, on campaign.signals.hosts_changed, which the core sends on commit); letter
  tracking events do not drop it, so the letter steps may lag that long;
- the last copy for a day: when the fresh one is gone the page shows the last one (saying
  so) and a worker recounts (`refresh`, one at a time per campaign), so no page view waits
  for the scan. A last copy older than DASHBOARD_STALE_SECONDS is recounted in the request,
  which bounds the lag if no worker runs.

Small campaigns are always counted afresh.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Case, Count, DateField, IntegerField, Max, Value, When
from django.db.models.functions import Greatest, TruncDate
from django.utils import timezone

from campaign import states
from campaign.models import Campaign, FeedImport, Host
from campaign.selectors import CampaignCounts, FunnelStep, StateCount
from letters.effect import campaign_effect
from letters.models import ControlHost, Letter, LetterHost
from probes.contacts.models import ContactRun
from probes.verification.models import ProbeRun

DAYS = 60  # the charts over time show this many days, ending today (UTC)
TOP_COUNTRIES = 12  # the country chart and table; the rest are summed as "Other"
OTHER = "Other"
UNKNOWN = "??"  # hosts without a known country

# Letter states (letters.states) seen from the host's side of the funnel.
APPROVED_LETTER_STATES = ("queued", "sent", "delivered", "bounced", "complained", "replied")
SENT_LETTER_STATES = ("sent", "delivered", "bounced", "complained", "replied")
# A reply or a complaint means the letter arrived even if the ESP never said "delivered".
DELIVERED_LETTER_STATES = ("delivered", "complained", "replied")

_VERIFIED = frozenset({states.VERIFIED_OPEN, states.CONTACT_RESOLVED, states.NO_CONTACT,
                       states.NOTIFIED, states.REMEDIATED})
_CONTACT = frozenset({states.CONTACT_RESOLVED, states.NOTIFIED, states.REMEDIATED})

GENERATION_KEY = "dashboard:generation"
log = logging.getLogger(__name__)


def _min_hosts() -> int:
    return int(settings.DASHBOARD_CACHE_MIN_HOSTS)


def _ttl() -> int:
    return int(settings.DASHBOARD_CACHE_SECONDS)


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def _days(end: dt.date, days: int = DAYS) -> list[dt.date]:
    return [end - dt.timedelta(days=days - 1 - i) for i in range(days)]


# --- the aggregates (each one query, bounded output) --------------------------------------


def country_state_counts(campaign: Campaign) -> list[tuple[str, str, int]]:
    """[(country, state, hosts)]: at most (countries × 8) rows, from one GROUP BY."""
    rows = (Host.objects.filter(campaign=campaign).order_by()
            .values_list("country", "state").annotate(n=Count("*")))
    return [(country or UNKNOWN, state, n) for country, state, n in rows]


def letter_host_counts(campaign: Campaign) -> dict[str, int]:
    """Distinct hosts on a live letter that was approved, went out, and arrived.

    Each host's furthest letter (a delivered first notice beats a queued second one) in one
    GROUP BY host, then hosts counted by that rank: one pass, where three COUNT(DISTINCT)s
    would sort the links three times.
    """
    rank = Case(
        When(letter__state__in=DELIVERED_LETTER_STATES, then=3),
        When(letter__state__in=SENT_LETTER_STATES, then=2),
        When(letter__state__in=APPROVED_LETTER_STATES, then=1),
        default=0, output_field=IntegerField(),
    )
    per_host = (LetterHost.objects.filter(letter__campaign=campaign, dropped=False).order_by()
                .values("host_id").annotate(r=Max(rank)).values("r"))
    sql, params = per_host.query.sql_with_params()
    with connection.cursor() as cursor:
        # `sql` is Django's own compilation of the query above; the values stay parameters.
        cursor.execute(f"SELECT r, COUNT(*) FROM ({sql}) AS per_host GROUP BY r",  # noqa: S608
                       params)
        by_rank = dict(cursor.fetchall())
    return {
        "approved": sum(n for r, n in by_rank.items() if r >= 1),
        "sent": sum(n for r, n in by_rank.items() if r >= 2),
        "delivered": by_rank.get(3, 0),
    }


def letters_sent_per_day(campaign: Campaign, *, end: dt.date | None = None,
                         days: int = DAYS) -> list[tuple[dt.date, int]]:
    """Letters that went out on each of the last `days` days (UTC), zeros included."""
    end = end or _today()
    start = end - dt.timedelta(days=days - 1)
    since = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    rows = dict(
        Letter.objects.filter(campaign=campaign, sent_at__gte=since).order_by()
        .annotate(day=TruncDate("sent_at", tzinfo=dt.UTC)).values_list("day")
        .annotate(n=Count("*"))
    )
    return [(day, rows.get(day, 0)) for day in _days(end, days)]


def remediation_curve(campaign: Campaign, *, end: dt.date | None = None,
                      days: int = DAYS) -> list[tuple[dt.date, int]]:
    """Cumulative remediated hosts at the end of each of the last `days` days (UTC).

    Hosts remediated before the window are folded onto its first day in SQL (GREATEST), so
    the first point carries everything before it and the result has at most `days` rows.
    """
    end = end or _today()
    start = end - dt.timedelta(days=days - 1)
    rows = dict(
        Host.objects.filter(campaign=campaign, state=states.REMEDIATED,
                            remediated_at__isnull=False).order_by()
        .annotate(day=Greatest(TruncDate("remediated_at", tzinfo=dt.UTC),
                               Value(start, output_field=DateField())))
        .values_list("day").annotate(n=Count("*"))
    )
    total, curve = 0, []
    for day in _days(end, days):
        total += rows.get(day, 0)
        curve.append((day, total))
    return curve


def effect_curves(campaign: Campaign) -> list[tuple[int, float, float]] | None:
    """Share remediated by each day since the letter (notified) or the hold-out (control).

    One row per day on which either curve steps (Kaplan–Meier, letters.effect), each curve
    carried forward between its own steps; None when the campaign has no control group.
    """
    if not ControlHost.objects.filter(campaign=campaign).exists():
        return None
    curves = campaign_effect(campaign)["curves"]
    steps = {name: dict((int(day), share) for day, share in curve)
             for name, curve in curves.items()}
    rows, notified, control = [(0, 0.0, 0.0)], 0.0, 0.0
    for day in sorted(set(steps["notified"]) | set(steps["control"])):
        notified = steps["notified"].get(day, notified)
        control = steps["control"].get(day, control)
        if day == 0:
            rows[0] = (0, notified, control)
        else:
            rows.append((day, notified, control))
    return rows


# --- the snapshot: everything above, cached for large campaigns ----------------------------


def _compute(campaign: Campaign, today: dt.date) -> dict:
    return {
        "created": campaign.created_at.isoformat(),
        "today": today.isoformat(),
        "counted_at": timezone.now().isoformat(),
        "country_states": country_state_counts(campaign),
        "letter_hosts": letter_host_counts(campaign),
        "sent_per_day": [(d.isoformat(), n) for d, n in letters_sent_per_day(campaign, end=today)],
        "remediated": [(d.isoformat(), n) for d, n in remediation_curve(campaign, end=today)],
        # Only with a control group; a full scan at a million hosts, hence in the snapshot.
        "effect": effect_curves(campaign),
    }


def _key(campaign_id: int, generation: int) -> str:
    return f"dashboard:{generation}:{campaign_id}"


def _last_key(campaign_id: int) -> str:
    return f"dashboard:last:{campaign_id}"


def _lock_key(campaign_id: int) -> str:
    return f"dashboard:refreshing:{campaign_id}"


def _stale_seconds() -> int:
    return int(settings.DASHBOARD_STALE_SECONDS)


def _of(data: dict | None, campaign: Campaign) -> bool:
    # Test databases reuse primary keys: a cached copy must be of this very campaign.
    return bool(data) and data.get("created") == campaign.created_at.isoformat()


def _store(campaign: Campaign, data: dict) -> None:
    if sum(n for _, _, n in data["country_states"]) >= _min_hosts():
        cache.set(_key(campaign.pk, cache.get(GENERATION_KEY, 0)), data, _ttl())
        cache.set(_last_key(campaign.pk), data, 86400)


def _queue_refresh(campaign: Campaign) -> bool:
    """Ask a worker to recount (at most one at a time per campaign); False if none can."""
    if not cache.add(_lock_key(campaign.pk), 1, 120):
        return True  # already on its way
    try:
        refresh_dashboard.delay(campaign.pk)
    except Exception:  # no broker: count in the request instead
        log.warning("could not queue a dashboard refresh", exc_info=True)
        cache.delete(_lock_key(campaign.pk))
        return False
    return True


def snapshot(campaign: Campaign) -> dict:
    """The dashboard's aggregates as plain JSON-able data (what the cache stores)."""
    today = _today()
    key = _key(campaign.pk, cache.get(GENERATION_KEY, 0))
    found = cache.get_many([key, _last_key(campaign.pk)])
    data = found.get(key)
    if _of(data, campaign) and data.get("today") == today.isoformat():
        return {**data, "cached": True, "stale": False}
    last = found.get(_last_key(campaign.pk))
    if _of(last, campaign):
        age = timezone.now() - dt.datetime.fromisoformat(last["counted_at"])
        if age.total_seconds() < _stale_seconds() and _queue_refresh(campaign):
            return {**last, "cached": True, "stale": True}
    data = _compute(campaign, today)
    _store(campaign, data)
    return {**data, "cached": False, "stale": False}


def refresh(campaign_id: int) -> None:
    """Recount a campaign's dashboard into the cache (the worker's side of `snapshot`)."""
    try:
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is not None:
            _store(campaign, _compute(campaign, _today()))
    finally:
        cache.delete(_lock_key(campaign_id))


@shared_task(name="campaign.refresh_dashboard", ignore_result=True)
def refresh_dashboard(campaign_id: int) -> None:
    """The worker's recount (`refresh`); registered when campaign.apps imports this module."""
    refresh(campaign_id)


def invalidate(campaign_id: int | None = None) -> None:
    """Forget the cached dashboard of one campaign (None: of every campaign).

    Call it after the change is committed: a page counted between an early invalidation and
    the commit would cache the old figures again (for at most DASHBOARD_CACHE_SECONDS).
    """
    try:
        if campaign_id is None:
            try:
                cache.incr(GENERATION_KEY)
            except ValueError:  # no counter yet: start one
                cache.set(GENERATION_KEY, 1, None)
        else:
            cache.delete(_key(campaign_id, cache.get(GENERATION_KEY, 0)))
    except Exception:  # a cache outage must not fail the host transition that called us
        log.warning("could not invalidate the cached dashboard", exc_info=True)


def on_hosts_changed(sender, *, campaign_id: int | None = None, **kwargs) -> None:
    """campaign.signals.hosts_changed (sent after the commit): the cached counts are old."""
    invalidate(campaign_id)


# --- what the template gets ----------------------------------------------------------------


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def counts_from(data: dict) -> CampaignCounts:
    """Hosts by state and the funnel (imported → … → remediated), hosts at least that far."""
    by = dict.fromkeys(states.HOST_STATES, 0)
    for _, state, n in data["country_states"]:
        by[state] = by.get(state, 0) + n
    total = sum(by.values())
    letter_hosts = data["letter_hosts"]
    steps = [
        ("imported", "Imported", total),
        ("verified_open", "Verified open", sum(by[s] for s in _VERIFIED)),
        ("contact_found", "Contact found", sum(by[s] for s in _CONTACT)),
        ("approved", "Approved", letter_hosts["approved"]),
        ("sent", "Sent", letter_hosts["sent"]),
        ("delivered", "Delivered", letter_hosts["delivered"]),
        ("remediated", "Remediated", by[states.REMEDIATED]),
    ]
    return CampaignCounts(
        total=total,
        by_state=[StateCount(s, states.HOST_STATE_LABELS.get(s, s), n, _percent(n, total))
                  for s, n in by.items()],
        funnel=[FunnelStep(key, label, n, _percent(n, total)) for key, label, n in steps],
    )


@dataclass(frozen=True, slots=True)
class CountryRow:
    country: str
    total: int
    by_state: list[int]  # in states.HOST_STATES order


def countries_from(data: dict, *, top: int = TOP_COUNTRIES) -> list[CountryRow]:
    """The `top` countries by hosts, then one "Other" row for the rest."""
    per: dict[str, dict[str, int]] = {}
    for country, state, n in data["country_states"]:
        per.setdefault(country, {})[state] = n
    ranked = sorted(per.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    rows = [CountryRow(c, sum(s.values()), [s.get(st, 0) for st in states.HOST_STATES])
            for c, s in ranked[:top]]
    rest = ranked[top:]
    if rest:
        sums = [sum(s.get(st, 0) for _, s in rest) for st in states.HOST_STATES]
        rows.append(CountryRow(OTHER, sum(sums), sums))
    return rows


def chart_data(data: dict) -> dict:
    """What static/js/charts.js draws; the same numbers fill the fallback tables."""
    countries = countries_from(data)
    return {
        "sent": {"labels": [d for d, _ in data["sent_per_day"]],
                 "values": [n for _, n in data["sent_per_day"]]},
        "remediated": {"labels": [d for d, _ in data["remediated"]],
                       "values": [n for _, n in data["remediated"]]},
        "countries": {
            "labels": [row.country for row in countries],
            "series": [{"label": states.HOST_STATE_LABELS[st], "state": st,
                        "values": [row.by_state[i] for row in countries]}
                       for i, st in enumerate(states.HOST_STATES)],
        },
    }


@dataclass(frozen=True, slots=True)
class OpenWork:
    imports: list
    probe_runs: list
    contact_runs: list

    @property
    def empty(self) -> bool:
        return not (self.imports or self.probe_runs or self.contact_runs)


def open_work(campaign: Campaign, *, limit: int = 10) -> OpenWork:
    """Imports, probe runs and contact runs queued or running (three short queries)."""
    running = ("queued", "running")
    return OpenWork(
        imports=list(FeedImport.objects.filter(campaign=campaign, status__in=running)
                     .select_related("feed").order_by("created_at", "id")[:limit]),
        probe_runs=list(ProbeRun.objects.filter(campaign=campaign, status__in=running)
                        .defer("host_ids").order_by("created_at", "id")[:limit]),
        contact_runs=list(ContactRun.objects.filter(campaign=campaign, status__in=running)
                          .order_by("created_at", "id")[:limit]),
    )


def dashboard_context(campaign: Campaign) -> dict:
    data = snapshot(campaign)
    countries = countries_from(data)
    return {
        "counts": counts_from(data),
        "countries": countries,
        "country_states": [(st, states.HOST_STATE_LABELS[st]) for st in states.HOST_STATES],
        "sent_per_day": data["sent_per_day"],
        "sent_total": sum(n for _, n in data["sent_per_day"]),
        "remediated_curve": data["remediated"],
        "chart_data": chart_data(data),
        "chart_days": DAYS,
        # Percent remediated by day since the letter (older cached snapshots lack the key).
        "effect_curve": [(day, round(100 * n, 1), round(100 * c, 1))
                         for day, n, c in data.get("effect") or ()],
        "open_work": open_work(campaign),
        "dashboard_cached": data["cached"],
        "dashboard_stale": data["stale"],
    }
