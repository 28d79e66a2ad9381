# The only SQL built from strings here is the staging table name, made from an integer
# import id; every value goes in as a query parameter.
# ruff: noqa: S608
"""Set-based merge of a parsed feed into hosts and sightings.

Parsed entries are streamed into a per-import staging table (`COPY` into an UNLOGGED
table), then one transaction decides duplicates,
rejects networks, upserts hosts and inserts sightings with a handful of statements. This is
what makes a million-line import take seconds instead of minutes, with flat memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from campaign.feeds.parsers import Entry
from campaign.kinds import KIND_BITS

log = logging.getLogger(__name__)

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": ""})


def _copy_text(value: str) -> str:
    return value.translate(_ESCAPES)


@dataclass
class MergeCounts:
    added: int
    known: int
    duplicates: int
    networks: int


class Staging:
    """One import's staging table on the default database connection."""

    def __init__(self, import_id: int) -> None:
        self.table = f"campaign_import_stg_{int(import_id)}"

    # -- lifecycle -------------------------------------------------------------------------
    def create(self) -> None:
        self.drop()
        with connection.cursor() as cursor:
            # UNLOGGED: the table lives for one import; crash safety would only cost WAL.
            cursor.execute(
                f"CREATE UNLOGGED TABLE {self.table} ("
                "line_no integer NOT NULL, ip inet NOT NULL, port integer, "
                "tag text NOT NULL DEFAULT '', seen_at text, evidence text, "
                "country varchar(2) NOT NULL DEFAULT '', asn bigint, dkey text NOT NULL, "
                "net_note text, kind smallint)"
            )

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.table}")

    # -- loading ---------------------------------------------------------------------------
    @staticmethod
    def _dkey(entry: Entry) -> str:
        key = entry.dedup_key
        # CSV keys are whole rows: keep the staging table small and free of odd bytes.
        return hashlib.blake2b(key.encode(), digest_size=16).hexdigest() if len(key) > 64 else key

    def load(self, entries: Iterable[Entry]) -> None:
        buffer = io.StringIO()
        write = buffer.write
        for e in entries:
            if e.port is None and not e.tag and e.seen_at is None and e.evidence is None \
                    and not e.network_note and not e.country and e.asn is None and not e.kind:
                # The common case of a plain IP list: nothing to escape.
                write(f"{e.line_no}\t{e.ip}\t\\N\t\t\\N\t\\N\t\t\\N\t{e.ip}\t\\N\t\\N\n")
                continue
            write(
                "\t".join((
                    str(e.line_no),
                    e.ip,
                    str(e.port) if e.port is not None else "\\N",
                    _copy_text(e.tag),
                    e.seen_at.isoformat() if e.seen_at else "\\N",
                    _copy_text(json.dumps(e.evidence)) if e.evidence else "\\N",
                    e.country,
                    str(e.asn) if e.asn is not None else "\\N",
                    _copy_text(self._dkey(e)),
                    _copy_text(e.network_note) if e.network_note else "\\N",
                    str(KIND_BITS[e.kind]) if e.kind else "\\N",
                )) + "\n"
            )
        buffer.seek(0)
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(
                f"COPY {self.table} (line_no, ip, port, tag, seen_at, evidence, country, asn, "
                "dkey, net_note, kind) FROM STDIN",
                buffer,
            )

    # -- merging (call inside one transaction) ---------------------------------------------
    def merge(self, *, import_id: int, campaign_id: int, kind: int, now: datetime) -> MergeCounts:
        t = self.table
        seen = "COALESCE(s.seen_at::timestamptz, %(now)s)"
        params = {"imp": import_id, "campaign": campaign_id, "kind": kind, "now": now}
        shown = (
            "CASE WHEN s.net_note IS NOT NULL THEN s.dkey "
            "WHEN s.port IS NOT NULL THEN host(s.ip) || ':' || s.port "
            "ELSE host(s.ip) END"
        )
        with connection.cursor() as raw_cursor:
            cursor = _TimedCursor(raw_cursor)
            # Fresh statistics let the planner hash-aggregate a million rows instead of
            # sorting them; more work_mem keeps those hashes in memory.
            cursor.execute(f"ANALYZE {t}")
            cursor.execute("SET LOCAL work_mem = '256MB'")
            # Hosts carry no FK constraint (see Host.campaign): hold the lock it would.
            cursor.execute(
                "SELECT id FROM campaign_campaign WHERE id = %(campaign)s FOR KEY SHARE",
                params,
            )
            if cursor.fetchone() is None:
                raise LookupError(f"campaign {campaign_id} no longer exists")
            # 1. Duplicates within the file: every line after the first with the same key.
            cursor.execute(
                f"""
                INSERT INTO campaign_importlineissue
                    (feed_import_id, line_no, content, reason, message, rejected)
                SELECT %(imp)s, s.line_no, substr({shown}, 1, 200), 'duplicate',
                       'duplicate of line ' || f.first_line, %(false)s
                FROM {t} s
                JOIN (SELECT dkey, min(line_no) AS first_line FROM {t}
                      GROUP BY dkey HAVING count(*) > 1) f ON f.dkey = s.dkey
                WHERE s.line_no <> f.first_line
                """,
                {**params, "false": False},
            )
            duplicates = cursor.rowcount
            if duplicates:
                cursor.execute(
                    f"DELETE FROM {t} WHERE line_no IN (SELECT line_no FROM "
                    "campaign_importlineissue WHERE feed_import_id = %(imp)s "
                    "AND reason = 'duplicate')",
                    params,
                )
            # 2. Networks larger than one address: rejected, we notify hosts only.
            cursor.execute(
                f"""
                INSERT INTO campaign_importlineissue
                    (feed_import_id, line_no, content, reason, message, rejected)
                SELECT %(imp)s, s.line_no, substr(s.dkey, 1, 200), 'network',
                       substr(s.net_note, 1, 300), %(true)s
                FROM {t} s WHERE s.net_note IS NOT NULL
                """,
                {**params, "true": True},
            )
            networks = cursor.rowcount
            # 3. Hosts: insert new ones, widen kinds and seen times of known ones.
            added, known = self._upsert_hosts(cursor, params, seen)
            # 4. Sightings: one per remaining host line.
            cursor.execute(
                f"""
                INSERT INTO campaign_sighting
                    (host_id, feed_import_id, line_no, seen_at, port, kind, tag, evidence)
                SELECT h.id, %(imp)s, s.line_no, {seen}, s.port, COALESCE(s.kind, %(kind)s),
                       s.tag, s.evidence::jsonb
                FROM {t} s
                JOIN campaign_host h ON h.campaign_id = %(campaign)s AND h.ip = s.ip
                WHERE s.net_note IS NULL
                ORDER BY h.id
                """,
                params,
            )
        return MergeCounts(added=added, known=known, duplicates=duplicates, networks=networks)

    def _upsert_hosts(self, cursor, params, seen) -> tuple[int, int]:
        cursor.execute(
            f"""
            WITH src AS (
                SELECT s.ip, bit_or(COALESCE(s.kind, %(kind)s)) AS kind,
                       max(s.country) AS country, max(s.asn) AS asn,
                       min({seen}) AS first_seen, max({seen}) AS last_seen
                FROM {self.table} s WHERE s.net_note IS NULL GROUP BY s.ip
            ), upsert AS (
                INSERT INTO campaign_host AS h (campaign_id, ip, kinds, state, country, asn,
                    first_seen, last_seen, state_changed_at)
                SELECT %(campaign)s, ip, kind, 'imported', country, asn,
                       first_seen, last_seen, %(now)s
                FROM src
                -- In address order, new entries land next to each other in the
                -- (campaign, ip) index instead of on random pages.
                ORDER BY ip
                ON CONFLICT (campaign_id, ip) DO UPDATE SET
                    kinds = h.kinds | EXCLUDED.kinds,
                    first_seen = LEAST(h.first_seen, EXCLUDED.first_seen),
                    last_seen = GREATEST(h.last_seen, EXCLUDED.last_seen),
                    country = CASE WHEN h.country = '' THEN EXCLUDED.country ELSE h.country END,
                    asn = COALESCE(h.asn, EXCLUDED.asn)
                -- Rewrite a known host only when it learns something: a kind, an earlier
                -- first sighting, a country/ASN, or a last sighting over an hour newer.
                -- Re-listing it within the hour changes nothing but its sightings.
                WHERE h.kinds <> (h.kinds | EXCLUDED.kinds)
                   OR EXCLUDED.first_seen < h.first_seen
                   OR EXCLUDED.last_seen > h.last_seen + interval '1 hour'
                   OR (h.country = '' AND EXCLUDED.country <> '')
                   OR (h.asn IS NULL AND EXCLUDED.asn IS NOT NULL)
                RETURNING (xmax = 0) AS inserted
            )
            SELECT (SELECT count(*) FROM upsert WHERE inserted), (SELECT count(*) FROM src)
            """,
            params,
        )
        added, distinct = cursor.fetchone()
        return added, distinct - added


class _TimedCursor:
    """Logs how long each merge statement takes: the numbers operators ask about."""

    def __init__(self, cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params=None):
        start = time.perf_counter()
        result = self._cursor.execute(sql, params)
        log.debug("merge step %.2fs: %s", time.perf_counter() - start, " ".join(sql.split())[:60])
        return result

    def __getattr__(self, name):
        return getattr(self._cursor, name)
