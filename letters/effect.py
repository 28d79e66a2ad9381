"""What the letters changed: notified hosts against the held-out control group.

Both groups are measured the same way: the clock starts when a letter left (notified) or
when the batch that would have written held the host out (control); a host counts as
remediated when a follow-up re-test found it closed, and hosts still open at the cut-off are
censored (Kaplan–Meier). Counts come from one GROUP BY in the database, whatever the number
of hosts; Python only sums the (group, language, country, outcome, day) cells.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from campaign.models import Campaign
from letters import outcomes, states
from letters.languages import normalize
from letters.stats import kaplan_meier, km_median, newcombe, wilson

NOTIFIED = "notified"
CONTROL = "control"
# Below this many hosts in either group a breakdown row says more about noise than letters.
MIN_GROUP = 10

# Both groups' members from the source tables: the first sent first notice of each notified
# host, and the control hosts.
_SOURCE_MEMBERS = """
WITH notified AS (
    -- MIN(language): a host has one sent first notice unless it re-opened after a fix,
    -- and then the same contact was written to again (in the same language, as a rule).
    SELECT lh.host_id, MIN(l.sent_at) AS t0, MIN(l.language) AS language
    FROM letters_letterhost lh JOIN letters_letter l ON l.id = lh.letter_id
    WHERE l.campaign_id = %(campaign)s AND l.kind = %(first)s AND l.sent_at IS NOT NULL
      AND NOT lh.dropped
    GROUP BY lh.host_id
)
SELECT 'notified' AS grp, n.t0, h.remediated_at AS fixed_at, n.language, h.country
FROM notified n JOIN campaign_host h ON h.id = n.host_id
UNION ALL
SELECT 'control', ch.since, ch.remediated_at, COALESCE(c.language, ''), h.country
FROM letters_controlhost ch JOIN campaign_host h ON h.id = ch.host_id
LEFT JOIN probes_contact c ON c.host_id = ch.host_id
WHERE ch.campaign_id = %(campaign)s
"""

# One row per (group, language, country, remediated?, whole days) of the members (grp, t0,
# fixed_at, language, country), from the source tables; on PostgreSQL the same cells come
# from the per-host rows letters.outcomes keeps (outcomes.effect_cells).
_CELLS_SQL = """
WITH members AS ({members}), timed AS (
    SELECT grp, language, country,
           (fixed_at IS NOT NULL AND fixed_at >= t0 AND fixed_at <= %(now)s) AS event, fixed_at, t0
    FROM members
    WHERE t0 <= %(now)s
)
SELECT grp, language, country, event,
       {days} AS days, COUNT(*)
FROM timed
GROUP BY 1, 2, 3, 4, 5
"""

# Whole days from t0 to the fix (events) or to the cut-off (still open: censored).
_DAYS = ("FLOOR(date_part('epoch', CASE WHEN event THEN fixed_at ELSE %(now)s END - t0)"
         " / 86400)::int")


def _cells(campaign: Campaign, now: datetime, from_source: bool) -> list[tuple]:
    if not from_source:
        return outcomes.effect_cells(campaign.pk, now)
    with transaction.atomic(), connection.cursor() as cursor:
        # The per-host aggregate hashes in memory instead of spilling to disk, and JIT
        # compiling costs more than it saves on this plan.
        cursor.execute("SET LOCAL work_mem = '128MB'; SET LOCAL jit = off")
        cursor.execute(_CELLS_SQL.format(members=_SOURCE_MEMBERS, days=_DAYS),
                       {"campaign": campaign.pk, "first": states.FIRST_NOTICE, "now": now})
        return cursor.fetchall()


class _Group:
    """Counts of one group in one slice, as (day → [events, censored])."""

    def __init__(self) -> None:
        self.table: dict[int, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, event: bool, days: int, n: int) -> None:
        self.table[max(days, 0)][0 if event else 1] += n

    @property
    def hosts(self) -> int:
        return sum(e + c for e, c in self.table.values())

    @property
    def remediated(self) -> int:
        return sum(e for e, _ in self.table.values())

    def curve(self) -> list[list[float]]:
        """[[day, share remediated by then]] (1 − Kaplan–Meier survival), for the dashboard."""
        table = ((d, e, c) for d, (e, c) in self.table.items())
        return [[day, round(1 - survival, 4)] for day, survival in kaplan_meier(table)]

    def summary(self) -> dict:
        hosts, fixed = self.hosts, self.remediated
        lo, hi = wilson(fixed, hosts)
        median = km_median((d, e, c) for d, (e, c) in self.table.items())
        return {
            "hosts": hosts,
            "remediated": fixed,
            "rate": round(fixed / hosts, 4) if hosts else None,
            "ci95": [round(lo, 4), round(hi, 4)] if hosts else None,
            "median_days": median,
        }


def _compare(groups: dict[str, _Group]) -> dict:
    notified, control = groups[NOTIFIED], groups[CONTROL]
    out = {NOTIFIED: notified.summary(), CONTROL: control.summary(), "difference": None}
    if notified.hosts and control.hosts:
        d, (lo, hi) = newcombe(notified.remediated, notified.hosts,
                               control.remediated, control.hosts)
        out["difference"] = {"rate": round(d, 4), "ci95": [round(lo, 4), round(hi, 4)]}
    return out


def _slices() -> dict[str, _Group]:
    return {NOTIFIED: _Group(), CONTROL: _Group()}


def campaign_effect(campaign: Campaign, *, now: datetime | None = None,
                    from_source: bool = False) -> dict:
    """The `effect` of campaign_report --json: both groups, their difference, breakdowns.

    `from_source` counts from the source tables even where letters.outcomes keeps per-host
    rows (tests compare the two)."""
    now = now or timezone.now()
    default_language = normalize(campaign.agency.default_language) or "en"
    total = _slices()
    by_language: dict[str, dict[str, _Group]] = defaultdict(_slices)
    by_country: dict[str, dict[str, _Group]] = defaultdict(_slices)
    for grp, language, country, event, days, n in _cells(campaign, now, from_source):
        # The letter's language (notified), the contact's as the builder reads it (control).
        language = normalize(language) or default_language
        total[grp].add(event, days, n)
        by_language[language][grp].add(event, days, n)
        by_country[country or "--"][grp].add(event, days, n)

    def breakdown(key: str, slices: dict[str, dict[str, _Group]]) -> list[dict]:
        return [
            {key: name, **_compare(groups)}
            for name, groups in sorted(slices.items())
            if groups[NOTIFIED].hosts >= MIN_GROUP and groups[CONTROL].hosts >= MIN_GROUP
        ]

    return {
        "holdout_percent": campaign.holdout_percent,
        "cutoff": now.isoformat(),
        "min_group": MIN_GROUP,
        **_compare(total),
        # The two remediation curves over time (hosts still open are censored, not failures).
        "curves": {name: group.curve() for name, group in total.items()},
        "by_language": breakdown("language", by_language),
        "by_country": breakdown("country", by_country),
    }
