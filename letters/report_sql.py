"""The campaign report's rows as one PostgreSQL query (GROUP BY), for campaigns of millions.

Same rows as letters.report's portable path (tests compare the two): a host counts once,
under the language of its first letter; delivered/bounced/replied if any letter about it
was; median days from the first letter that left to the re-test that found it closed
(per host to the tenth of a day).
"""

from __future__ import annotations

from django.db import connection, transaction

from campaign import states as host_states
from letters import states

_SQL = """
WITH links(host_id, letter_id) AS ({links}),
per_host AS (
    SELECT k.host_id,
           (array_agg(l.language ORDER BY l.sent_at, l.id))[1] AS language,
           MIN(l.sent_at) AS first_sent,
           bool_or(l.delivered_at IS NOT NULL OR l.state = %s) AS delivered,
           bool_or(l.bounced_at IS NOT NULL OR l.state = %s) AS bounced,
           bool_or(l.replied_at IS NOT NULL OR l.state = %s) AS replied
    FROM links k JOIN letters_letter l ON l.id = k.letter_id
    GROUP BY k.host_id
),
hosts AS (
    -- The host's own country (from the feed), else its abuse contact's (from the registry).
    SELECT COALESCE(NULLIF(h.country, ''), NULLIF(c.country, ''), '--') AS country,
           p.language, p.delivered,
           p.bounced, p.replied,
           CASE WHEN h.state = %s AND h.remediated_at IS NOT NULL
                THEN FLOOR(EXTRACT(EPOCH FROM (h.remediated_at - p.first_sent)) / 8640 + 0.5)
           END AS tenths,
           (h.state = %s AND h.remediated_at IS NOT NULL) AS fixed
    FROM per_host p JOIN campaign_host h ON h.id = p.host_id
    LEFT JOIN probes_contact c ON c.host_id = h.id
)
SELECT country, language, GROUPING(country, language) <> 0 AS total, COUNT(*),
       COUNT(*) FILTER (WHERE delivered), COUNT(*) FILTER (WHERE bounced),
       COUNT(*) FILTER (WHERE replied), COUNT(*) FILTER (WHERE fixed),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY tenths) FILTER (WHERE tenths IS NOT NULL) / 10
FROM hosts
GROUP BY GROUPING SETS ((country, language), ())
"""


def campaign_rows(links_qs) -> list[dict]:
    """Report rows from a LetterHost queryset of the links to count (sent, not dropped)."""
    links = links_qs.order_by().values("host_id", "letter_id")
    links_sql, links_params = links.query.sql_with_params()
    params = (*links_params, states.DELIVERED, states.BOUNCED, states.REPLIED,
              host_states.REMEDIATED, host_states.REMEDIATED)
    with transaction.atomic(), connection.cursor() as cursor:
        # JIT compiling costs more than it saves on this plan (measured: bench/report_bench.py).
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(_SQL.format(links=links_sql), params)
        fetched = cursor.fetchall()
    rows, total = [], None
    for (country, language, is_total, notified, delivered, bounced, replied, remediated,
         median) in fetched:
        row = {
            "country": "all" if is_total else country,
            "language": "all" if is_total else language,
            "notified": notified,
            "delivered": delivered,
            "bounced": bounced,
            "replied": replied,
            "remediated": remediated,
            "remediation_rate": round(remediated / notified, 4) if notified else 0.0,
            "median_days_to_remediation": round(median, 1) if median is not None else None,
        }
        if is_total:
            total = row
        else:
            rows.append(row)
    rows.sort(key=lambda r: (r["country"], r["language"]))
    if rows and total is not None:
        rows.append(total)
    return rows
