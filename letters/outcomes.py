"""Per-host report rows (HostOutcome) on PostgreSQL: refreshed from the queue the triggers fill.

A campaign report over a million hosts cannot join links, letters, hosts and contacts each
time and still come back in under a second. Triggers (letters/migrations/0004_host_outcome.py)
queue a host whenever something the report reads changes; `refresh_outcomes` recomputes the
queued hosts' rows in one set-based statement, before every report and once a minute (beat),
so a report only pays for what changed since the last one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from celery import shared_task
from django.db import DatabaseError, connection, transaction

from campaign import states as host_states
from letters import states

DAY_US = 86_400_000_000  # microseconds

# Correctness rests on one rule: every change commits together with its own queue row (the
# triggers queue unconditionally, except a host update, which holds the host's row lock until
# it commits, and the refresh skips locked hosts). So a refresh deletes exactly the queue rows
# it saw (by id, never by host: a newer row for the same host stays), and a change it could
# not see yet is queued for the next one.

# A bounded slice of the queue (one campaign's, for a report), in a temporary table whose
# statistics are exact where the queue's own lag far behind: the hosts of the oldest `chunk`
# entries, with every entry of theirs (a host queued by its contact and again by its letter
# is recomputed once, not in two chunks).
_COPY_QUEUE = """
INSERT INTO _outcome_queued (qid, host_id)
SELECT d.id, d.host_id FROM letters_outcomedirty d
WHERE d.host_id IN (
    SELECT oldest.host_id FROM letters_outcomedirty oldest {campaign_join}
    ORDER BY oldest.id LIMIT %(chunk)s
)
"""
_CAMPAIGN_JOIN = "JOIN campaign_host h ON h.id = oldest.host_id AND h.campaign_id = %(campaign)s"

# Only hosts written to (or about to be), held out, or with a row take part; the queue rows of
# the others (a contact resolved for a host never written to) are simply dropped: whatever
# makes such a host take part later queues it itself.
_CANDIDATES = """
INSERT INTO _outcome_candidates (id)
SELECT DISTINCT q.host_id FROM _outcome_queued q
WHERE EXISTS (SELECT 1 FROM letters_letterhost lh WHERE lh.host_id = q.host_id)
   OR EXISTS (SELECT 1 FROM letters_controlhost ch WHERE ch.host_id = q.host_id)
   OR EXISTS (SELECT 1 FROM letters_hostoutcome o WHERE o.host_id = q.host_id)
"""

# Hosts another transaction holds (a probe chunk, a sending worker) are skipped (SKIP LOCKED)
# and stay queued: their change is not committed yet, and waiting for it could deadlock with
# that transaction's own locks.
_LOCK_CANDIDATES = """
WITH locked AS (
    SELECT h.id FROM campaign_host h JOIN _outcome_candidates c ON c.id = h.id
    ORDER BY h.id
    FOR NO KEY UPDATE OF h SKIP LOCKED
)
INSERT INTO _outcome_ids SELECT id FROM locked
"""

# The queue rows seen, of hosts about to be recomputed or taking no part.
_UNQUEUE = """
DELETE FROM letters_outcomedirty d
USING _outcome_queued q
WHERE d.id = q.qid
  AND (EXISTS (SELECT 1 FROM _outcome_ids i WHERE i.id = q.host_id)
       OR NOT EXISTS (SELECT 1 FROM _outcome_candidates c WHERE c.id = q.host_id))
"""

# The same definitions as letters.report's portable path and letters.effect's cells:
# a host's language is that of its first letter (by sent_at, then id); delivered, bounced and
# replied if any letter about it was; days to remediation from the first letter that left,
# per host to the tenth of a day. The effect's notified clock starts at the first sent first
# notice; the control group's at the batch that held the host out.
_RECOMPUTE = """
INSERT INTO letters_hostoutcome (
    host_id, campaign_id, country, host_country, first_sent, language, delivered, bounced,
    replied, fixed_tenths, effect_group, effect_language, effect_t0_us, effect_t0_day,
    effect_t0_rest_us, effect_fixed_us, effect_fixed_days, control_language, control_t0_us,
    control_fixed_us, control_fixed_days)
WITH sent AS (
    SELECT lh.host_id,
           (array_agg(l.language ORDER BY l.sent_at, l.id))[1] AS language,
           MIN(l.sent_at) AS first_sent,
           bool_or(l.delivered_at IS NOT NULL OR l.state = %(delivered)s) AS delivered,
           bool_or(l.bounced_at IS NOT NULL OR l.state = %(bounced)s) AS bounced,
           bool_or(l.replied_at IS NOT NULL OR l.state = %(replied)s) AS replied,
           MIN(l.sent_at) FILTER (WHERE l.kind = %(first)s) AS notice_t0,
           MIN(l.language) FILTER (WHERE l.kind = %(first)s) AS notice_language
    FROM letters_letterhost lh JOIN letters_letter l ON l.id = lh.letter_id
    WHERE lh.host_id IN (SELECT id FROM _outcome_ids)
      AND l.sent_at IS NOT NULL AND NOT lh.dropped
    GROUP BY lh.host_id
), hosts AS (
    SELECT h.id, h.campaign_id,
           COALESCE(NULLIF(h.country, ''), NULLIF(c.country, ''), '--') AS country,
           h.country AS host_country, s.first_sent, COALESCE(s.language, '') AS language,
           COALESCE(s.delivered, false) AS delivered, COALESCE(s.bounced, false) AS bounced,
           COALESCE(s.replied, false) AS replied,
           CASE WHEN h.state = %(remediated)s AND h.remediated_at IS NOT NULL
                     AND s.first_sent IS NOT NULL
                THEN FLOOR(EXTRACT(EPOCH FROM (h.remediated_at - s.first_sent)) / 8640 + 0.5)::int
           END AS fixed_tenths,
           s.notice_t0 IS NOT NULL AS notified,
           CASE WHEN s.notice_t0 IS NOT NULL THEN 'notified'
                WHEN ch.id IS NOT NULL THEN 'control' ELSE '' END AS effect_group,
           CASE WHEN s.notice_t0 IS NOT NULL THEN s.notice_language
                ELSE COALESCE(c.language, '') END AS effect_language,
           COALESCE(s.notice_t0, ch.since) AS t0,
           CASE WHEN s.notice_t0 IS NOT NULL THEN h.remediated_at
                ELSE ch.remediated_at END AS fixed_at,
           COALESCE(c.language, '') AS contact_language,
           ch.since AS control_since, ch.remediated_at AS control_fixed_at
    FROM campaign_host h
    LEFT JOIN sent s ON s.host_id = h.id
    LEFT JOIN letters_controlhost ch ON ch.host_id = h.id
    LEFT JOIN probes_contact c ON c.host_id = h.id
    WHERE h.id IN (SELECT id FROM _outcome_ids) AND (s.host_id IS NOT NULL OR ch.id IS NOT NULL)
)
SELECT id, campaign_id, country, host_country, first_sent, language, delivered, bounced,
       replied, fixed_tenths, effect_group, effect_language, t0_us,
       (t0_us / %(day_us)s)::int, t0_us %% %(day_us)s, {us:fixed_at}, {days:t0:fixed_at},
       CASE WHEN notified AND control_since IS NOT NULL THEN contact_language ELSE '' END,
       CASE WHEN notified THEN {us:control_since} END,
       CASE WHEN notified THEN {us:control_fixed_at} END,
       CASE WHEN notified THEN {days:control_since:control_fixed_at} END
FROM (SELECT *, {us:t0} AS t0_us FROM hosts) timed
"""


def _expand(sql: str) -> str:
    """{us:t}: timestamp t in microseconds since the epoch; {days:t0:t}: whole days from t0
    to t when t came at or after t0 (as letters.effect counts them from the source tables)."""
    sql = re.sub(r"\{us:([\w.]+)\}", r"(EXTRACT(EPOCH FROM \1) * 1000000)::bigint", sql)
    return re.sub(r"\{days:([\w.]+):([\w.]+)\}",
                  r"CASE WHEN \2 >= \1 THEN FLOOR(date_part('epoch', \2 - \1) / 86400)::int END",
                  sql)


_RECOMPUTE = _expand(_RECOMPUTE)


CHUNK = 20_000  # queued hosts per transaction: locks held briefly, memory bounded
_LOCK_KEY = "hashtext('letters.refresh_outcomes')"
_TEMP_TABLES = {
    "_outcome_queued": "(qid bigint PRIMARY KEY, host_id bigint NOT NULL)",
    "_outcome_candidates": "(id bigint PRIMARY KEY)",
    "_outcome_ids": "(id bigint PRIMARY KEY)",
}


def refresh_outcomes(campaign_id: int | None = None, *, wait: bool = True,
                     chunk: int = CHUNK) -> int:
    """Recompute the rows of the queued hosts (of one campaign, or all), CHUNK at a time, each
    chunk in its own transaction; the number of hosts recomputed.

    Stops when the queue is empty or a chunk made no progress (every host in it locked
    elsewhere). With `wait=False` (the beat) it returns at once if another refresh runs.
    """
    total = 0
    while True:
        done, progressed, full = _refresh_chunk(campaign_id, wait=wait, chunk=chunk)
        total += done
        if not (progressed and full):
            return total


# The beat's name for it since it lived in letters.tasks; registered when letters.apps
# imports this module.
@shared_task(name="letters.tasks.refresh_outcomes_task", autoretry_for=(DatabaseError,),
             max_retries=3, retry_backoff=True)
def refresh_outcomes_task() -> int:
    """Keep the report's per-host rows close to current, so a report has little left to do."""
    return refresh_outcomes(wait=False)  # a report refreshing now does the work


def _refresh_chunk(campaign_id: int | None, *, wait: bool, chunk: int) -> tuple[int, bool, bool]:
    """One chunk: (hosts recomputed, queue rows removed?, was the chunk full?)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM letters_outcomedirty)")
        if not cursor.fetchone()[0]:
            return 0, False, False
        # One refresh at a time (reports, dashboards and the beat may ask together).
        if wait:
            cursor.execute(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        else:
            cursor.execute(f"SELECT pg_try_advisory_xact_lock({_LOCK_KEY})")
            if not cursor.fetchone()[0]:
                return 0, False, False
        # The rows touched are few and cached: index look-ups, not scans of a million rows
        # (the default random_page_cost prices them as disk seeks). Reset at the end: inside
        # an outer transaction SET LOCAL would outlive this savepoint.
        cursor.execute("SET LOCAL work_mem = '128MB'; SET LOCAL jit = off; "
                       "SET LOCAL random_page_cost = 1.1")
        for table, columns in _TEMP_TABLES.items():
            # Dropped first: inside an outer transaction (a request, a test) ON COMMIT has
            # not come yet when the effect refreshes right after the report.
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{table}")
            cursor.execute(f"CREATE TEMP TABLE {table} {columns} ON COMMIT DROP")
        join = _CAMPAIGN_JOIN if campaign_id is not None else ""
        cursor.execute(_COPY_QUEUE.format(campaign_join=join),
                       {"campaign": campaign_id, "chunk": chunk})
        copied = cursor.rowcount
        done = removed = 0
        if copied:
            cursor.execute("ANALYZE _outcome_queued")
            cursor.execute(_CANDIDATES)
            cursor.execute("ANALYZE _outcome_candidates")
            cursor.execute(_LOCK_CANDIDATES)
            done = cursor.rowcount
            cursor.execute("ANALYZE _outcome_ids")
            cursor.execute(_UNQUEUE)
            removed = cursor.rowcount
        if done:
            cursor.execute("DELETE FROM letters_hostoutcome "
                           "WHERE host_id IN (SELECT id FROM _outcome_ids)")
            cursor.execute(_RECOMPUTE, {
                "delivered": states.DELIVERED, "bounced": states.BOUNCED,
                "replied": states.REPLIED, "first": states.FIRST_NOTICE,
                "remediated": host_states.REMEDIATED, "day_us": DAY_US,
            })
        cursor.execute("SET LOCAL work_mem TO DEFAULT; SET LOCAL jit TO DEFAULT; "
                       "SET LOCAL random_page_cost TO DEFAULT")
    # Fewer entries than a chunk: the queue (of the campaign) held no more.
    return done, removed > 0, copied >= chunk


def tenths_of_days(seconds: float) -> int:
    """Days to remediation per host, to the tenth (as the SQL: half a tenth rounds up)."""
    return int((seconds / 8640 + 0.5) // 1)


def median_tenths(histogram: dict[int, int]) -> float | None:
    """The median, in days, of a {tenths of days: hosts} histogram (statistics.median's
    rule: the mean of the two middle values when the count is even)."""
    total = sum(histogram.values())
    if not total:
        return None
    middle = [(total - 1) // 2, total // 2]
    found: list[int] = []
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        while middle and middle[0] < seen:
            found.append(value)
            middle.pop(0)
    return (found[0] + found[1]) / 2 / 10


_REPORT_CELLS = """
SELECT country, language, delivered, bounced, replied, fixed_tenths, COUNT(*)
FROM letters_hostoutcome
WHERE campaign_id = %s AND first_sent IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6
"""


def report_cells(campaign_id: int) -> list[tuple]:
    """(country, language, delivered, bounced, replied, fixed_tenths, hosts) of a campaign."""
    refresh_outcomes(campaign_id)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_REPORT_CELLS, [campaign_id])
        return cursor.fetchall()



# The effect's cells (see letters.effect) in three parts, each over plain columns so that
# PostgreSQL aggregates in parallel: remediated hosts by whole days to the fix; hosts still
# open at the cut-off by the day of their t0, split by whether the rest of that day came after
# the cut-off's (one whole day less); and the rare notified host also in the control group.
_EFFECT_EVENTS = """
SELECT effect_group, effect_language, host_country, effect_fixed_days, COUNT(*)
FROM letters_hostoutcome
WHERE campaign_id = %(campaign)s AND effect_t0_us <= %(now_us)s
  AND effect_fixed_days IS NOT NULL AND effect_fixed_us <= %(now_us)s
GROUP BY 1, 2, 3, 4
"""

_EFFECT_OPEN = """
SELECT effect_group, effect_language, host_country, effect_t0_day,
       COUNT(*) FILTER (WHERE effect_t0_rest_us > %(rest_us)s),
       COUNT(*) FILTER (WHERE effect_t0_rest_us <= %(rest_us)s)
FROM letters_hostoutcome
WHERE campaign_id = %(campaign)s AND effect_t0_us <= %(now_us)s
  AND (effect_fixed_days IS NULL OR effect_fixed_us > %(now_us)s)
GROUP BY 1, 2, 3, 4
"""

_EFFECT_ALSO_CONTROL = """
SELECT 'control', control_language, host_country,
       control_fixed_days IS NOT NULL AND control_fixed_us <= %(now_us)s,
       CASE WHEN control_fixed_days IS NOT NULL AND control_fixed_us <= %(now_us)s
            THEN control_fixed_days ELSE (%(now_us)s - control_t0_us) / %(day_us)s END,
       COUNT(*)
FROM letters_hostoutcome
WHERE campaign_id = %(campaign)s AND control_t0_us <= %(now_us)s
GROUP BY 1, 2, 3, 4, 5
"""


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def effect_cells(campaign_id: int, now: datetime) -> list[tuple]:
    """The effect's cells (group, language, country, remediated?, days, hosts) of a campaign
    at the cut-off `now`, from the kept rows."""
    refresh_outcomes(campaign_id)
    now_us = (now - EPOCH) // timedelta(microseconds=1)
    today, rest_us = divmod(now_us, DAY_US)
    params = {"campaign": campaign_id, "now_us": now_us, "rest_us": rest_us, "day_us": DAY_US}
    cells: list[tuple] = []
    with transaction.atomic(), connection.cursor() as cursor:
        # JIT compiling costs more than it saves on these plans (bench/report_bench.py).
        cursor.execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
        cursor.execute(_EFFECT_EVENTS, params)
        cells += [(grp, language, country, True, days, n)
                  for grp, language, country, days, n in cursor.fetchall()]
        cursor.execute(_EFFECT_OPEN, params)
        for grp, language, country, t0_day, later_in_day, earlier_in_day in cursor.fetchall():
            # floor((now - t0) / day) = (today - t0_day), one less if t0's time of day
            # came after the cut-off's.
            if later_in_day:
                cells.append((grp, language, country, False, today - t0_day - 1, later_in_day))
            if earlier_in_day:
                cells.append((grp, language, country, False, today - t0_day, earlier_in_day))
        cursor.execute(_EFFECT_ALSO_CONTROL, params)
        cells += cursor.fetchall()
    return cells
