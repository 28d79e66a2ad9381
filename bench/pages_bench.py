"""Page-latency benchmark: every staff page against 1,000,000 hosts and 100,000 letters.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sys_bench_pages \\
        .venv/bin/python bench/pages_bench.py [--hosts N] [--letters N] [--runs 20] [--reuse]

The bench database is dropped and recreated: the one named in DATABASE_URL if that name ends
in "pages" and contains "bench", else `<name>_pages` (sys_bench → sys_bench_pages) or
`<name>_bench_pages`, so a dev database is never touched. It is migrated
(or built from the models while they are ahead of their migrations, e.g. a new index awaiting
makemigrations), then filled set-based in SQL (`INSERT … SELECT generate_series`): hosts
across states, countries and kinds with their sightings, probe runs and results, network records and
contacts, letter batches, letters and their host links, re-tests, tracking events, replies,
suppressions and audit events; then VACUUM ANALYZE, so the planner has statistics and
index-only scans see an all-visible heap, as in a database that has been running for a while.

Each page (the PAGES table below: add a line for a new page) is fetched in-process with
Django's test Client, logged in as an admin-role user: two warm-ups, then --runs timed
requests (server time: middleware, session, view, template). It prints p50/p95/max in ms, the
number of SQL queries of one request and its slowest query, and flags pages whose p95 is over
the budget (200 ms), with EXPLAIN ANALYZE of their slowest query. Routes of the staff app that
have no line in PAGES are listed at the end, so a new page is not silently left out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/sys_bench_pages"
BUDGET_MS = 200.0
SLUG = "bench"
ADMIN, STAFF, REVIEWER = "bench-admin", "bench-staff", "bench-reviewer"


# --- the pages ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    """One page to time: a route name, its URL arguments and query string.

    `args` and the values of `query` are keys of the fixtures dict (see `discover`), or
    literal strings prefixed with "=". `user` is who is logged in ("": nobody).
    """

    name: str
    route: str
    args: tuple[str, ...] = ("slug",)
    query: dict[str, str] = field(default_factory=dict)
    user: str = ADMIN


PAGES: list[Page] = [
    Page("campaign list", "campaign_list", args=()),
    Page("campaign dashboard", "campaign_detail"),
    Page("hosts: first page", "host_list"),
    Page("hosts: deep keyset page (?after)", "host_list", query={"after": "deep_id"}),
    Page("hosts: keyset page back (?before)", "host_list", query={"before": "deep_id"}),
    Page("hosts: state+country", "host_list", query={"state": "=notified", "country": "=DE"}),
    Page("hosts: state+country, next page", "host_list",
         query={"state": "=notified", "country": "=DE", "after": "notified_de_after"}),
    Page("hosts: sparse state+country+kind", "host_list",
         query={"state": "=no_contact", "country": "=EG", "kind": "=proxy"}),
    Page("hosts: kind filter", "host_list", query={"kind": "=proxy"}),
    Page("hosts: CIDR /16", "host_list", query={"q": "cidr16"}),
    Page("hosts: CIDR /8", "host_list", query={"q": "cidr8"}),
    Page("hosts: CIDR /8 + state", "host_list", query={"q": "cidr8", "state": "=notified"}),
    Page("hosts: one IP", "host_list", query={"q": "host_ip"}),
    Page("host detail (notified, letters)", "host_detail", args=("slug", "host_ip")),
    Page("host detail (300 sightings)", "host_detail", args=("slug", "heavy_ip")),
    Page("import form", "import_create"),
    Page("import detail + rejections p1", "import_detail", args=("slug", "import_pk")),
    Page("import detail + rejections last", "import_detail", args=("slug", "import_pk"),
         query={"page": "=last"}),
    Page("import status JSON", "import_status", args=("slug", "import_pk")),
    Page("probe run form", "probe_run_start"),
    Page("probe run (big) p1", "probe_run_detail", args=("slug", "run_pk")),
    Page("probe run (big) verdict=open", "probe_run_detail", args=("slug", "run_pk"),
         query={"verdict": "=open"}),
    Page("probe run (big) last page", "probe_run_detail", args=("slug", "run_pk"),
         query={"page": "=last"}),
    Page("probe run (running)", "probe_run_detail", args=("slug", "running_run_pk")),
    Page("probe run status JSON", "probe_run_status", args=("slug", "running_run_pk")),
    Page("contact run form", "contact_run_start"),
    Page("contact run detail", "contact_run_detail", args=("slug", "contact_run_pk")),
    Page("contact run status JSON", "contact_run_status", args=("slug", "contact_run_pk")),
    Page("contact override form", "contact_set", args=("slug", "host_ip")),
    Page("suppression list", "suppression_list", args=()),
    Page("suppression search", "suppression_list", args=(), query={"q": "=suppressed12"}),
    Page("batch form", "batch_create"),
    Page("review queue (reviewer)", "review_queue", args=(), user=REVIEWER),
    Page("batch (submitted, reviewer)", "batch_detail", args=("slug", "batch_submitted_pk"),
         user=REVIEWER),
    Page("batch (sent) p1", "batch_detail", args=("slug", "batch_sent_pk")),
    Page("batch (sent) last page", "batch_detail", args=("slug", "batch_sent_pk"),
         query={"page": "=last"}),
    Page("batch status JSON (sending)", "batch_status", args=("slug", "batch_sending_pk")),
    Page("letters: first page", "letter_list"),
    Page("letters: state=bounced", "letter_list", query={"state": "=bounced"}),
    Page("letters: last page", "letter_list", query={"page": "=last"}),
    Page("letter detail (replied)", "letter_detail", args=("slug", "letter_pk")),
    Page("letter preview (draft, with English)", "letter_preview",
         args=("slug", "draft_letter_pk")),
    Page("agencies and templates", "agency_list", args=()),
    Page("agency settings", "agency_settings", args=("agency_pk",)),
    Page("template editor (HTML body, preview)", "template_edit",
         args=("=first_notice.body.html",)),
    # The recipient's public page (no login: the signed link in the letter).
    Page("recipient page (public)", "recipient_page", args=("recipient_token",), user=""),
    Page("recipient page in English (public)", "recipient_page", args=("recipient_token",),
         query={"lang": "=en"}, user=""),
]
# Routes with nothing to time with a GET: form posts, and the status of a re-test that a
# recipient started from their page.
NOT_PAGES = {"batch_submit", "batch_approve", "batch_reject", "batch_send", "letter_remove",
             "recipient_retest", "recipient_feedback", "recipient_run_status",
             "template_preview"}


# --- seeding -------------------------------------------------------------------------------

# 100 slots each: drawing slot `hash mod 100` gives these shares.
STATE_SHARES = [
    ("imported", 30), ("not_open", 25), ("unreachable", 12), ("verified_open", 5),
    ("contact_resolved", 9), ("no_contact", 3), ("notified", 11), ("remediated", 5),
]
COUNTRY_SHARES = [
    ("US", 18), ("CN", 10), ("BR", 7), ("RU", 6), ("DE", 5), ("IN", 5), ("FR", 4), ("GB", 4),
    ("VN", 4), ("KR", 3), ("JP", 3), ("TR", 3), ("IT", 3), ("ID", 3), ("NL", 3), ("PL", 2),
    ("ES", 2), ("UA", 2), ("AR", 2), ("MX", 2), ("IR", 2), ("TH", 2), ("TW", 1), ("RO", 1),
    ("SE", 1), ("ZA", 1), ("EG", 1),
]
LANGUAGE_OF = {
    "US": "en", "CN": "zh", "BR": "pt", "RU": "ru", "DE": "de", "IN": "en", "FR": "fr",
    "GB": "en", "VN": "vi", "KR": "ko", "JP": "ja", "TR": "tr", "IT": "it", "ID": "id",
    "NL": "nl", "PL": "pl", "ES": "es", "UA": "uk", "AR": "es", "MX": "es", "IR": "fa",
    "TH": "th", "TW": "zh", "RO": "ro", "SE": "sv", "ZA": "en", "EG": "ar",
}
OPEN_STATES = ("verified_open", "contact_resolved", "no_contact", "notified", "remediated")
BATCH_SIZE = 1000
IMPORTS = 20
ISSUES = 20_000  # rejected lines of one import: the rejection report pages through them
HEAVY_SIGHTINGS = 300

SMTP_OPEN = ("S: 220 mx.example.net ESMTP Postfix\\nC: EHLO probe.invalid\\nS: 250-mx.example.net"
             "\\nS: 250 8BITMIME\\nC: MAIL FROM:<probe@canary.invalid>\\nS: 250 2.1.0 Ok\\n"
             "C: RCPT TO:<t0k3n@canary.invalid>\\nS: 250 2.1.5 Ok\\nC: DATA\\nS: 354 End data"
             "\\nS: 250 2.0.0 Ok: queued as 4F2A1\\nC: QUIT")
SMTP_CLOSED = ("S: 220 mx.example.net ESMTP\\nC: EHLO probe.invalid\\nS: 250 mx.example.net\\n"
               "C: MAIL FROM:<probe@canary.invalid>\\nS: 250 Ok\\nC: RCPT TO:<t0k3n@canary."
               "invalid>\\nS: 554 5.7.1 Relay access denied\\nC: QUIT")
PROXY_OPEN = ("C: CONNECT canary.invalid:2525 HTTP/1.1\\nS: HTTP/1.1 200 Connection established"
              "\\n(canary saw token t0k3n)")
PROXY_CLOSED = "C: CONNECT canary.invalid:2525 HTTP/1.1\\nS: HTTP/1.1 403 Forbidden"


def sql_text_array(values: list[str]) -> str:
    # Only our own constants go in here (slugs, country codes): never outside input.
    return "ARRAY[" + ",".join(f"'{v}'" for v in values) + "]::text[]"


def sql_int_array(values: list[int]) -> str:
    return "ARRAY[" + ",".join(str(int(v)) for v in values) + "]::bigint[]"


def slots(shares: list[tuple[str, int]]) -> list[str]:
    out = [name for name, n in shares for _ in range(n)]
    assert len(out) == 100, len(out)
    return out


class Seeder:
    def __init__(self, cursor, connection, hosts: int, letters: int) -> None:
        self.cur = cursor
        self.connection = connection
        self.hosts = hosts
        self.letters = letters
        self.timings: list[tuple[str, int, float]] = []

    @contextmanager
    def step(self, name: str) -> Iterator[list[int]]:
        rows = [0]
        start = time.perf_counter()
        yield rows
        elapsed = time.perf_counter() - start
        self.timings.append((name, rows[0], elapsed))
        print(f"  seed {name:<28} {rows[0]:>10,} rows {elapsed:7.1f} s", flush=True)

    def execute(self, sql: str, params=None) -> int:
        self.cur.execute(sql, params)
        return self.cur.rowcount

    def insert_select(self, model, values: dict[str, str], source: str) -> int:
        """INSERT INTO the model's table SELECT `values` (field name → SQL over `source`).

        Every other NOT NULL column gets its field's default, so a field someone adds to a
        model later does not break the seed. Value expressions take no parameters (so `%`
        is never needed: use mod()).
        """
        columns, exprs, params = [], [], []
        names = set()
        quote = self.connection.ops.quote_name
        for f in model._meta.concrete_fields:
            names.add(f.name)
            if f.name in values:
                columns.append(quote(f.column))
                exprs.append(values[f.name])
            elif f.primary_key or f.null:
                continue
            else:
                default = f.get_default()
                if default is None:
                    raise SystemExit(f"pages_bench: the seed does not fill {model.__name__}."
                                     f"{f.name} (NOT NULL, no default); add it to the seed")
                columns.append(quote(f.column))
                exprs.append("%s")
                params.append(f.get_db_prep_save(default, self.connection))
        unknown = set(values) - names
        if unknown:
            raise SystemExit(f"pages_bench: {model.__name__} has no field {sorted(unknown)}")
        sql = (f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
               f"SELECT {', '.join(exprs)} FROM {source}")
        return self.execute(sql, params or None)

    def seed(self) -> None:
        from django.utils import timezone

        from campaign.models import (
            Agency,
            AuditEvent,
            Feed,
            FeedImport,
            Host,
            ImportLineIssue,
            Sighting,
        )
        from campaign.services import add_user, create_campaign
        from letters.models import (
            Batch,
            InboundMessage,
            Letter,
            LetterEvent,
            LetterHost,
            LetterSettings,
            Retest,
        )
        from probes.contacts.models import Contact, ContactRun, NetworkRecord, Suppression
        from probes.verification.models import ProbeResult, ProbeRun

        t = lambda model: model._meta.db_table  # noqa: E731
        now = timezone.now()
        day = timezone.timedelta(days=1)
        cur = self.cur
        # Seeding only: these session settings are reset before anything is measured.
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET work_mem = '256MB'")
        cur.execute("SET maintenance_work_mem = '512MB'")

        with self.step("agency, users, campaigns") as n:
            Agency.objects.create(
                name="Bench Agency", country="DE", sender_email="notices@agency.example",
                info_url="https://agency.example/sys",
                instructions_url="https://agency.example/sys/howto",
            )
            admin = add_user(username=ADMIN, role="admin", password="bench-password-1")
            staff = add_user(username=STAFF, role="staff", password="bench-password-1")
            reviewer = add_user(username=REVIEWER, role="reviewer", password="bench-password-1")
            campaign = create_campaign(slug=SLUG, agency_name="Bench Agency",
                                       name="Open relays and proxies 2025", actor=admin)
            for i in range(11):  # a realistic campaign list: a few more, empty ones
                create_campaign(slug=f"other-{i}", agency_name="Bench Agency",
                                kinds="relay" if i % 2 else "proxy")
            LetterSettings.objects.create(campaign=campaign)
            n[0] = 15

        with self.step("feeds and imports") as n:
            feeds = Feed.objects.bulk_create(
                Feed(name=f"Blocklist {i:02d}", format="ipport" if i % 3 else "csv",
                     url=f"https://feeds.example/{i}.txt")
                for i in range(IMPORTS)
            )
            per = self.hosts // IMPORTS
            imports = FeedImport.objects.bulk_create(
                FeedImport(
                    campaign=campaign, feed=feeds[i], source=feeds[i].url,
                    requested_format="auto", detected_format=feeds[i].format,
                    kind=1 if i % 2 else 2, status=FeedImport.DONE, bytes_total=per * 17,
                    bytes_read=per * 17, lines=per + (ISSUES if i == 3 else 0) + 100,
                    added=per, known=100, rejected=ISSUES if i == 3 else 0,
                    created_by=admin, created_at=now - (IMPORTS - i) * 5 * day,
                    started_at=now - (IMPORTS - i) * 5 * day,
                    finished_at=now - (IMPORTS - i) * 5 * day + timezone.timedelta(minutes=3),
                )
                for i in range(IMPORTS)
            )
            import_ids = [fi.pk for fi in imports]
            n[0] = 2 * IMPORTS

        with self.step("import rejections") as n:
            n[0] = self.insert_select(ImportLineIssue, {
                "feed_import": str(import_ids[3]),
                "line_no": "g * 7",
                "content": "'bogus-line-' || g",
                "reason": "CASE WHEN mod(g, 3) = 0 THEN 'reserved' ELSE 'not_an_ip' END",
                "message": "CASE WHEN mod(g, 3) = 0 THEN 'address is in reserved space' "
                           "ELSE 'not an IP address, ip:port or CIDR' END",
                "rejected": "true",
            }, f"generate_series(1, {ISSUES}) AS g")

        v6 = self.hosts // 100
        v4 = self.hosts - v6
        clusters = min(45_000, max(1, math.ceil(v4 / 200)))
        stride = 65_534 // math.ceil(v4 / clusters)
        with self.step("hosts") as n:
            # Hosts cluster in /16 networks (one country and ASN each), ~200 per network, so
            # a CIDR search finds a realistic handful; state and kind are independent of id.
            n[0] = self.insert_select(Host, {
                "campaign": str(campaign.pk),
                "ip": f"CASE WHEN g <= {v4} THEN '0.0.0.0'::inet + ((1300 + mod(c * 7919, "
                      f"45000))::bigint * 65536 + 1 + k * {stride}) "
                      f"ELSE '2a02:1800::'::inet + g::bigint * 4096 END",
                "kinds": "CASE WHEN mod(h2, 100) < 55 THEN 1 WHEN mod(h2, 100) < 95 THEN 2 "
                         "ELSE 3 END",
                "state": "st",
                "country": f"({sql_text_array(slots(COUNTRY_SHARES))})[1 + mod(hc, 100)]",
                "asn": "3000 + mod(hc, 60000)",
                "first_seen": "now() - make_interval(hours => 720 + mod(h2, 7200))",
                "last_seen": "now() - make_interval(hours => mod(h2, 720))",
                "state_changed_at": "now() - make_interval(hours => mod(h1, 1440))",
                "remediated_at": "CASE WHEN st = 'remediated' THEN now() - "
                                 "make_interval(hours => mod(h1, 1440)) END",
            }, f"""(SELECT g, c, k, h1, h2, hashint4(c) & 2147483647 AS hc,
                           ({sql_text_array(slots(STATE_SHARES))})[1 + mod(h1, 100)] AS st
                    FROM (SELECT g, mod(g, {clusters}) AS c, g / {clusters} AS k,
                                 hashint4(g) & 2147483647 AS h1,
                                 hashint4(g # 1234567) & 2147483647 AS h2
                          FROM generate_series(1, {self.hosts}) AS g) a) s""")
        host_where = f"h.campaign_id = {campaign.pk}"
        heavy_id = self._one(f"SELECT min(id) FROM {t(Host)} h WHERE {host_where} "
                             "AND state = 'notified'")

        with self.step("sightings") as n:
            imp = sql_int_array(import_ids)
            common = {
                "host": "h.id", "line_no": f"(h.id / {IMPORTS})::int + 1",
                "port": "CASE WHEN h.kinds & 1 <> 0 THEN 25 WHEN mod(h.id, 3) = 0 THEN 1080 "
                        "ELSE 8080 END",
                "kind": "h.kinds",
                "tag": "CASE WHEN h.kinds & 2 <> 0 THEN (CASE WHEN mod(h.id, 3) = 0 "
                       "THEN 'socks5' ELSE 'http' END) ELSE '' END",
            }
            n[0] = self.insert_select(Sighting, {
                **common, "feed_import": f"({imp})[1 + mod(h.id, {IMPORTS})]",
                "seen_at": "h.first_seen",
            }, f"{t(Host)} h WHERE {host_where}")
            # A third of the hosts were listed again by a later feed.
            n[0] += self.insert_select(Sighting, {
                **common, "feed_import": f"({imp})[1 + mod(h.id + 7, {IMPORTS})]",
                "seen_at": "h.last_seen",
            }, f"{t(Host)} h WHERE {host_where} AND mod(h.id, 3) = 0")
            # One host listed by every feed, again and again: the worst host page.
            n[0] += self.insert_select(Sighting, {
                **common, "feed_import": f"({imp})[1 + mod(g, {IMPORTS})]",
                "line_no": "g", "seen_at": "now() - make_interval(hours => g)",
            }, f"{t(Host)} h, generate_series(1, {HEAVY_SIGHTINGS}) AS g WHERE h.id = {heavy_id}")

        with self.step("probe runs and results") as n:
            runs = ProbeRun.objects.bulk_create(
                ProbeRun(campaign=campaign, created_by=admin, status=ProbeRun.DONE,
                         reason="manual" if i == 0 else ("follow_up" if i == 8 else "reprobe"),
                         created_at=now - (60 - 6 * i) * day,
                         started_at=now - (60 - 6 * i) * day,
                         finished_at=now - (60 - 6 * i) * day + timezone.timedelta(hours=2))
                for i in range(9)
            )
            running = ProbeRun.objects.create(
                campaign=campaign, created_by=admin, status=ProbeRun.RUNNING,
                state_filter="imported", reason="manual", started_at=now,
            )
            run_ids = [r.pk for r in runs]
            checks = ("(VALUES (1, 'smtp_relay', 25, true), (2, 'http_proxy', 8080, true), "
                      "(2, 'socks5', 1080, false)) AS ch(bit, name, port, lead)")
            result = {
                "host": "h.id", "check_name": "ch.name", "port": "ch.port",
                "variant": "CASE WHEN v = 'open' AND ch.bit = 1 THEN 'plain' ELSE '' END",
                "transcript": f"CASE WHEN ch.bit = 1 AND v = 'open' THEN E'{SMTP_OPEN}' "
                              f"WHEN ch.bit = 1 THEN E'{SMTP_CLOSED}' WHEN v = 'open' "
                              f"THEN E'{PROXY_OPEN}' ELSE E'{PROXY_CLOSED}' END",
                "error": "CASE WHEN v = 'unreachable' THEN 'connect timed out after 5.0 s' "
                         "WHEN v = 'error' THEN 'connection reset by peer' ELSE '' END",
                "verdict": "v",
                "duration_ms": "40 + mod(h.id, 4000)",
            }
            verdict = (f"CASE WHEN ch.lead AND h.state IN {OPEN_STATES!r} THEN 'open' "
                       "WHEN h.state = 'unreachable' THEN 'unreachable' "
                       "WHEN mod(h.id, 97) = 0 THEN 'error' ELSE 'not_open' END")
            # Every probed host (not `imported`) has results: 85% from the first big run,
            # the rest from seven re-probe runs.
            n[0] = self._probe_results(ProbeResult, Host, result, verdict, checks,
                                       host_where, run_ids)
            # The follow-up run re-tested every notified host's first check.
            n[0] += self.insert_select(ProbeResult, {
                **result, "run": str(run_ids[8]), "started_at": "now() - interval '6 days'",
            }, f"""(SELECT h.id, h.kinds, ch.*, CASE WHEN h.state = 'remediated' THEN 'not_open'
                           ELSE 'open' END AS v
                    FROM {t(Host)} h JOIN {checks} ON h.kinds & ch.bit <> 0 AND ch.lead
                    WHERE {host_where} AND h.state IN ('notified', 'remediated')
                    ORDER BY h.id) AS h(id, kinds, bit, name, port, lead, v)
                    CROSS JOIN LATERAL (SELECT h.bit, h.name, h.port) AS ch(bit, name, port)""")
            # The running run: 20,000 imported hosts chosen, 8,000 probed so far.
            n[0] += self.insert_select(ProbeResult, {
                **result, "run": str(running.pk), "started_at": "now()",
            }, f"""(SELECT h.id, h.kinds, ch.*, CASE WHEN mod(h.id, 5) = 0 THEN 'unreachable'
                           ELSE 'not_open' END AS v
                    FROM (SELECT id, kinds FROM {t(Host)} h WHERE {host_where}
                          AND state = 'imported' ORDER BY id LIMIT 8000) h
                    JOIN {checks} ON h.kinds & ch.bit <> 0) AS h(id, kinds, bit, name, port,
                    lead, v) CROSS JOIN LATERAL (SELECT h.bit, h.name, h.port) AS ch(bit, name,
                    port)""")
            # The heavy host's history: sixty re-probes.
            n[0] += self.insert_select(ProbeResult, {
                **result, "run": f"({sql_int_array(run_ids)})[1 + mod(g, 9)]",
                "started_at": "now() - make_interval(hours => g * 12)",
            }, f"""(SELECT h.id, h.kinds, g, 'open' AS v FROM {t(Host)} h,
                    generate_series(1, 60) AS g WHERE h.id = {heavy_id}) AS h(id, kinds, g, v)
                    CROSS JOIN (VALUES (1, 'smtp_relay', 25)) AS ch(bit, name, port)""")
            self.execute(f"""
                WITH per_host AS (
                    SELECT run_id, host_id, count(*) AS checks,
                           bool_or(verdict = 'open') AS o, bool_or(verdict = 'unreachable') AS u,
                           bool_or(verdict = 'error') AS e
                    FROM {t(ProbeResult)} GROUP BY run_id, host_id),
                per_run AS (
                    SELECT run_id, jsonb_agg(host_id ORDER BY host_id) AS ids, count(*) AS hosts,
                           sum(checks) AS checks, count(*) FILTER (WHERE o) AS o,
                           count(*) FILTER (WHERE NOT o AND u) AS u,
                           count(*) FILTER (WHERE NOT o AND NOT u AND e) AS e,
                           count(*) FILTER (WHERE NOT o AND NOT u AND NOT e) AS no
                    FROM per_host GROUP BY run_id)
                UPDATE {t(ProbeRun)} r SET host_ids = p.ids, total = p.hosts, done = p.hosts,
                       checks_done = p.checks, open_count = p.o, unreachable_count = p.u,
                       error_count = p.e, not_open_count = p.no
                FROM per_run p WHERE p.run_id = r.id""")
            self.execute(f"""
                UPDATE {t(ProbeRun)} SET total = 20000, host_ids = (
                    SELECT jsonb_agg(id ORDER BY id) FROM (SELECT id FROM {t(Host)} h
                    WHERE {host_where} AND state = 'imported' ORDER BY id LIMIT 20000) x)
                WHERE id = {running.pk}""")

        with self.step("networks and contacts") as n:
            n[0] = self.insert_select(NetworkRecord, {
                "network": "set_masklen('0.0.0.0'::inet + net * 65536, 16)::cidr",
                "start_address": "'0.0.0.0'::inet + net * 65536",
                "end_address": "'0.0.0.0'::inet + (net * 65536 + 65535)",
                "cidrs": "jsonb_build_array(host('0.0.0.0'::inet + net * 65536) || '/16')",
                "name": "'NET-' || net", "handle": "'NET-' || net || '-1'",
                "country": "country", "organisation": "'Hosting provider ' || net",
                "status": "'found'", "email": "'abuse@net' || net || '.example'",
                "confidence": "'high'", "role": "'abuse'", "source": "'rdap'",
                "server": "'https://rdap.registry.example/'",
                "raw": "'{\"objectClassName\": \"ip network\", \"handle\": \"NET-' || net "
                       "|| '\"}'",
                "fetched_at": "now() - interval '3 days'",
                "expires_at": "now() + interval '27 days'",
            }, f"""(SELECT DISTINCT ON (net) net, country FROM (
                        SELECT (h.ip - '0.0.0.0'::inet) / 65536 AS net, h.country
                        FROM {t(Host)} h WHERE {host_where} AND family(h.ip) = 4) x
                    ORDER BY net) AS nets""")
            status = ("CASE WHEN h.state = 'no_contact' THEN 'no_contact' "
                      "WHEN h.state = 'verified_open' THEN 'failed' ELSE 'resolved' END")
            lang = "CASE h.country " + " ".join(
                f"WHEN '{cc}' THEN '{lang}'" for cc, lang in LANGUAGE_OF.items()
            ) + " ELSE 'en' END"
            n[0] += self.insert_select(Contact, {
                "host": "h.id", "network": "nr.id", "status": status,
                "email": f"CASE WHEN {status} = 'resolved' THEN coalesce(nr.email, "
                         "'abuse@v6.example') ELSE '' END",
                "organisation": "coalesce(nr.organisation, '')", "country": "h.country",
                "language": lang, "source": "'rdap'", "server": "coalesce(nr.server, '')",
                "handle": "coalesce(nr.handle, '')", "confidence": "'high'",
                "fetched_at": "now() - interval '3 days'", "attempts": "1",
                "last_error": f"CASE WHEN {status} = 'failed' THEN 'registry answered 429' "
                              "ELSE '' END",
                "next_attempt_at": f"CASE WHEN {status} = 'failed' THEN now() + "
                                   "interval '1 hour' END",
            }, f"""{t(Host)} h LEFT JOIN {t(NetworkRecord)} nr
                    ON nr.start_address = host(network(set_masklen(h.ip, 16)))::inet
                    WHERE {host_where} AND h.state IN {OPEN_STATES!r}
                    AND (h.state <> 'verified_open' OR mod(h.id, 5) = 0)""")
            ContactRun.objects.bulk_create(
                ContactRun(campaign=campaign, mode=ContactRun.PENDING, status=ContactRun.DONE,
                           hosts_total=40_000, hosts_done=40_000, resolved=38_000,
                           failed=2_000, queries=1_900, created_by=admin,
                           created_at=now - (10 - i) * 3 * day)
                for i in range(3)
            )
            n[0] += 3

        with self.step("batches, letters, links") as n:
            n[0] = self._letters(campaign, staff, reviewer, now, day, Batch, Letter, LetterHost,
                                 Host, Contact)

        with self.step("re-tests, events, replies") as n:
            n[0] = self.insert_select(Retest, {
                "campaign": str(campaign.pk), "host": "h.id",
                "outcome": "CASE WHEN h.state = 'remediated' THEN 'remediated' "
                           "WHEN mod(h.id, 5) < 2 THEN 'still_open' ELSE 'inconclusive' END",
                "evidence": "'[]'::jsonb", "at": "now() - interval '6 days'",
                "probe_run_id": str(run_ids[8]),
            }, f"{t(Host)} h WHERE {host_where} AND h.state IN ('notified', 'remediated')")
            n[0] += self.insert_select(LetterEvent, {
                "letter": "l.id", "esp": "'bench'", "event_id": "'ev-' || l.id",
                "event_type": "CASE l.state WHEN 'replied' THEN 'delivered' ELSE l.state END",
                "recipient": "l.email", "message_id": "l.esp_message_id",
                "description": "CASE WHEN l.state = 'bounced' THEN '550 5.1.1 mailbox "
                               "unknown' ELSE '' END",
                "at": "coalesce(l.bounced_at, l.delivered_at, l.sent_at)",
            }, f"{t(Letter)} l WHERE l.state IN ('delivered', 'bounced', 'complained', "
               "'replied')")
            n[0] += self.insert_select(InboundMessage, {
                "letter": "l.id", "esp": "'bench'", "from_email": "l.email",
                "to": "'notices@agency.example'", "subject": "'Re: ' || l.subject",
                "text": "'Thank you, we have closed the relay. Regards, the NOC'",
                "message_id": "'<reply-' || l.id || '@isp.example>'",
                "in_reply_to": "l.message_id", "received_at": "l.replied_at",
            }, f"{t(Letter)} l WHERE l.state = 'replied'")
            n[0] += self.insert_select(Suppression, {
                "value": "'abuse@suppressed' || g || '.example'", "kind": "'address'",
                "reason": "'hard bounce'", "source": "'bounce'",
                "created_at": "now() - make_interval(hours => g)",
            }, "generate_series(1, 2000) AS g")

        with self.step("audit events") as n:
            n[0] = self.insert_select(AuditEvent, {
                "at": "coalesce(l.sent_at, l.created_at)", "action": "'letter.' || l.state",
                "campaign": "l.campaign_id", "object_type": "'letter'",
                "object_id": "l.id::text", "data": "'{}'::jsonb",
            }, f"{t(Letter)} l")
            n[0] += self.insert_select(AuditEvent, {
                "at": "h.state_changed_at", "action": "'host.transition'",
                "campaign": "h.campaign_id", "object_type": "'host'",
                "object_id": "h.id::text",
                "data": "jsonb_build_object('from', 'verified_open', 'to', h.state)",
            }, f"{t(Host)} h WHERE {host_where} AND h.state <> 'imported'")

        cur.execute("RESET ALL")
        with self.step("vacuum analyze") as n:
            cur.execute("VACUUM ANALYZE")

    def _probe_results(self, ProbeResult, Host, result, verdict, checks, host_where, run_ids):
        return self.insert_select(ProbeResult, {
            **result,
            "run": f"CASE WHEN mod(h.id * 7, 100) < 85 THEN {run_ids[0]} ELSE "
                   f"({sql_int_array(run_ids[1:8])})[1 + mod(h.id, 7)] END",
            "started_at": "h.state_changed_at - interval '1 hour'",
        }, f"""(SELECT h.id, h.kinds, h.state_changed_at, ch.bit, ch.name, ch.port,
                       {verdict} AS v
                FROM {Host._meta.db_table} h JOIN {checks} ON h.kinds & ch.bit <> 0
                WHERE {host_where} AND h.state <> 'imported' ORDER BY h.id)
                AS h(id, kinds, state_changed_at, bit, name, port, v)
                CROSS JOIN LATERAL (SELECT h.bit, h.name, h.port) AS ch(bit, name, port)""")

    def _letters(self, campaign, staff, reviewer, now, day, Batch, Letter, LetterHost, Host,
                 Contact) -> int:
        """Letters in three groups, each in batches of BATCH_SIZE: first notices (1–2 hosts
        of one network each) for notified and remediated hosts, second notices for notified
        hosts, and drafts for contact_resolved hosts awaiting review."""
        from letters.languages import normalize

        host_t, contact_t = Host._meta.db_table, Contact._meta.db_table
        where = f"h.campaign_id = {campaign.pk} AND c.status = 'resolved'"
        # The letter's language: the contact's, where we have letters in it (as build_batch).
        language = "CASE c.language " + " ".join(
            f"WHEN '{lang}' THEN '{normalize(lang) or 'en'}'"
            for lang in sorted(set(LANGUAGE_OF.values()))
        ) + " ELSE 'en' END"
        self.execute(f"""
            CREATE TEMP TABLE seed_notified AS
            SELECT h.id AS host_id, h.state, host(h.ip) AS ip, h.country, c.email,
                   {language} AS language,
                   row_number() OVER (ORDER BY c.network_id NULLS LAST, h.id) AS r
            FROM {host_t} h JOIN {contact_t} c ON c.host_id = h.id
            WHERE {where} AND h.state IN ('notified', 'remediated')""")
        notified = self._one("SELECT count(*) FROM seed_notified")
        first = min(notified, self.letters * 90 // 100)
        second = min(self.letters * 5 // 100, notified)
        drafts = self.letters - first - second
        self.execute(f"""
            CREATE TEMP TABLE seed_link AS
            SELECT (r - 1) * {first} / {notified} + 1 AS n, host_id, ip, country, email,
                   language, 'first_notice' AS kind FROM seed_notified
            UNION ALL
            SELECT {first} + r, host_id, ip, country, email, language, 'second_notice' FROM (
                SELECT host_id, ip, country, email, language,
                       row_number() OVER (ORDER BY r) AS r
                FROM seed_notified WHERE state = 'notified') s WHERE r <= {second}
            UNION ALL
            SELECT {first + second} + r, host_id, ip, country, email, language,
                   'first_notice' FROM (
                SELECT h.id AS host_id, host(h.ip) AS ip, h.country, c.email,
                       {language} AS language, row_number() OVER (ORDER BY h.id) AS r
                FROM {host_t} h JOIN {contact_t} c ON c.host_id = h.id
                WHERE {where} AND h.state = 'contact_resolved') d WHERE r <= {drafts}""")
        drafts = self._one(f"SELECT count(*) FROM seed_link WHERE n > {first + second}")
        total = first + second + drafts

        # Batch states by group: all sent but the newest first-notice batches (one sending,
        # one approved); drafts: three submitted (the review queue), one draft, one rejected.
        def batch_states(count: int, group: str) -> list[str]:
            k = math.ceil(count / BATCH_SIZE)
            if group == "first":
                return ["sent"] * max(0, k - 2) + ["sending", "approved"][:k][-min(k, 2):]
            if group == "second":
                return ["sent"] * k
            pattern = ["submitted", "submitted", "submitted", "draft", "rejected"]
            return [pattern[i % len(pattern)] for i in range(k)]

        groups = [("first", 0, first), ("second", first, second),
                  ("drafts", first + second, drafts)]
        batch_ids: dict[str, list[int]] = {}
        batch_state: dict[str, list[str]] = {}
        for group, _offset, count in groups:
            st = batch_states(count, group)
            batches = Batch.objects.bulk_create(
                Batch(campaign=campaign, state=s, created_by=staff,
                      filters={"country": ""}, review_comment="Looks good" if s in (
                          "approved", "sending", "sent") else ("Wrong language" if
                                                             s == "rejected" else ""),
                      reviewed_by=reviewer if s in ("approved", "sending", "sent",
                                                    "rejected") else None,
                      created_at=now - (len(st) - i) * day / 2,
                      submitted_at=None if s == "draft" else now - (len(st) - i) * day / 2)
                for i, s in enumerate(st)
            )
            batch_ids[group] = [b.pk for b in batches]
            batch_state[group] = st
            Batch.editors.through.objects.bulk_create(
                Batch.editors.through(batch_id=b.pk, user_id=staff.pk) for b in batches
            )

        def by_group(arrays: dict[str, str]) -> str:
            parts = []
            for group, offset, count in groups:
                if count:
                    parts.append(f"WHEN n <= {offset + count} THEN "
                                 f"({arrays[group]})[1 + (n - {offset + 1}) / {BATCH_SIZE}]")
            return "CASE " + " ".join(parts) + " END"

        batch_expr = by_group({g: sql_int_array(batch_ids[g]) for g in batch_ids})
        bstate_expr = by_group({g: sql_text_array(batch_state[g]) for g in batch_state})
        # Within sent batches, what tracking made of each letter.
        out = ("CASE WHEN x < 600 THEN 'delivered' WHEN x < 860 THEN 'sent' WHEN x < 940 "
               "THEN 'bounced' WHEN x < 980 THEN 'replied' WHEN x < 990 THEN 'complained' "
               "ELSE 'failed' END")
        state = (f"CASE bs WHEN 'sent' THEN {out} WHEN 'sending' THEN CASE WHEN x < 500 "
                 "THEN 'sent' ELSE 'queued' END WHEN 'approved' THEN 'queued' "
                 "WHEN 'rejected' THEN 'cancelled' ELSE 'draft' END")
        sent = "ls IN ('sent', 'delivered', 'bounced', 'replied', 'complained')"
        # Real bodies: each (kind, language) rendered once by the real renderer from a
        # sample letter, so previews and letter pages show what a real letter weighs.
        from letters import template_store
        from letters.rendering import SAMPLE_CONTEXT

        agency = template_store.agency_context(campaign)
        renderer = template_store.load_renderer()
        self.execute("CREATE TEMP TABLE seed_body (kind text, language text, subject text, "
                     "body_text text, body_html text)")
        self.execute("SELECT DISTINCT kind, language FROM seed_link")
        for kind, lang in self.cur.fetchall():
            r = renderer.render(kind, {**SAMPLE_CONTEXT, "agency": agency, "kind": kind},
                                lang)
            self.execute("INSERT INTO seed_body VALUES (%s, %s, %s, %s, %s)",
                          [kind, lang, r.subject, r.text, r.html])

        # The real function's keys (so a key added to it later is there), then per letter:
        # its kind, hosts and dates.
        base = template_store.letter_context(campaign=campaign, agency=agency,
                                              kind="first_notice", hosts=[],
                                              first_notice_at=None, now=now)

        def literal(value) -> str:
            return "'" + json.dumps(value).replace("'", "''") + "'::jsonb"

        evidence = ("jsonb_build_array(jsonb_build_object('check', 'smtp_relay', 'port', 25, "
                    "'when', '2025-01-06T10:00:00+00:00', 'sender', 'probe@canary.invalid', "
                    "'recipient', 't0k3n@canary.invalid', 'variant', 'plain'))")
        when = "'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"'"
        count = self.insert_select(Letter, {
            "batch": "batch_id", "campaign": str(campaign.pk), "kind": "l.kind", "state": "ls",
            "email": "email", "language": "l.language", "bilingual": "false",
            "idempotency_key": "'b' || lpad(n::text, 31, '0')",
            "message_id": "'<letter.b' || n || '@agency.example>'",
            "subject": "b.subject", "body_text": "b.body_text", "body_html": "b.body_html",
            "context": f"{literal(base)} || jsonb_build_object('kind', l.kind, "
                       "'hosts', hosts, 'retest_after', "
                       "to_char(created_at + interval '30 days', 'YYYY-MM-DD'), "
                       "'first_notice_at', CASE WHEN l.kind = 'second_notice' THEN "
                       f"to_char(created_at - interval '30 days', {when}) END)",
            "claimed_at": f"CASE WHEN {sent} THEN created_at + interval '1 hour' END",
            "claim_token": f"CASE WHEN {sent} THEN md5(n::text) ELSE '' END",
            "attempts": f"CASE WHEN {sent} OR ls = 'failed' THEN 1 ELSE 0 END",
            "last_error": "CASE WHEN ls = 'failed' THEN '554 5.7.1 rejected by policy' "
                          "ELSE '' END",
            "esp_message_id": f"CASE WHEN {sent} THEN 'esp-' || n ELSE '' END",
            "created_at": "created_at", "state_changed_at": "created_at + interval '1 day'",
            "sent_at": f"CASE WHEN {sent} THEN created_at + interval '1 hour' END",
            "delivered_at": "CASE WHEN ls IN ('delivered', 'replied', 'complained') "
                            "THEN created_at + interval '62 minutes' END",
            "bounced_at": "CASE WHEN ls = 'bounced' THEN created_at + interval '70 minutes' END",
            "complained_at": "CASE WHEN ls = 'complained' THEN created_at + interval '3 days' "
                             "END",
            "replied_at": "CASE WHEN ls = 'replied' THEN created_at + interval '2 days' END",
        }, f"""(SELECT *, {state} AS ls FROM (
                    SELECT n, batch_id, bs, kind, email, language, x, hosts,
                           now() - make_interval(mins => (({total} - n) * 129600 / {total})::int)
                           AS created_at
                    FROM (SELECT n, {batch_expr} AS batch_id, {bstate_expr} AS bs,
                                 min(kind) AS kind, min(email) AS email,
                                 min(language) AS language,
                                 jsonb_agg(jsonb_build_object('ip', ip, 'country', country,
                                           'evidence', {evidence}) ORDER BY host_id) AS hosts,
                                 mod(hashint4(n::int) & 2147483647, 1000) AS x
                          FROM seed_link GROUP BY n) g) s) AS l
                JOIN seed_body b ON b.kind = l.kind AND b.language = l.language
                ORDER BY l.n""")
        count += self.insert_select(LetterHost, {
            "letter": "l.id", "host": "s.host_id",
            "evidence": "jsonb_build_array(jsonb_build_object('check', 'smtp_relay', "
                        "'port', 25, 'when', '2025-01-01T00:00:00+00:00', 'variant', 'plain'))",
            "dropped": "false",
        }, f"""seed_link s JOIN {Letter._meta.db_table} l
                ON l.idempotency_key = 'b' || lpad(s.n::text, 31, '0')""")
        self.execute("DROP TABLE seed_link, seed_notified, seed_body")
        return count

    def _one(self, sql: str):
        self.cur.execute(sql)
        return self.cur.fetchone()[0]


# --- fixtures and measuring ---------------------------------------------------------------

def discover() -> dict[str, str]:
    """What the pages need to name (ids, addresses), read back from a seeded database."""
    import ipaddress

    from django.db import connection
    from django.db.models import Count

    from campaign.models import Campaign, Host, ImportLineIssue
    from letters.models import Batch, InboundMessage, Letter
    from probes.contacts.models import ContactRun, Suppression
    from probes.verification.models import ProbeRun

    campaign = Campaign.objects.get(slug=SLUG)
    hosts = Host.objects.filter(campaign=campaign)
    notified = list(hosts.filter(state="notified").order_by("id").values_list("ip", flat=True)[:2])
    with connection.cursor() as cur:
        cur.execute(f"SELECT id FROM {Host._meta.db_table} WHERE campaign_id = %s ORDER BY id "
                    "OFFSET (SELECT count(*) * 9 / 10 FROM campaign_host WHERE campaign_id = %s)"
                    " LIMIT 1", [campaign.pk, campaign.pk])
        deep_id = cur.fetchone()[0]
    de = list(hosts.filter(state="notified", country="DE").order_by("id")
              .values_list("id", flat=True)[:50])
    issues = (ImportLineIssue.objects.filter(feed_import__campaign=campaign)
              .values("feed_import").annotate(n=Count("id")).order_by("-n").first())
    fx = {
        "slug": SLUG,
        "agency_pk": str(campaign.agency_id),
        "heavy_ip": notified[0],
        "host_ip": notified[1],
        "cidr16": str(ipaddress.ip_network(f"{notified[1]}/16", strict=False)),
        "cidr8": str(ipaddress.ip_network(f"{notified[1]}/8", strict=False)),
        "deep_id": str(deep_id),
        "notified_de_after": str(de[-1]),
        "import_pk": str(issues["feed_import"]),
        "run_pk": str(ProbeRun.objects.filter(campaign=campaign, status="done")
                      .order_by("-total").first().pk),
        "running_run_pk": str(ProbeRun.objects.get(campaign=campaign, status="running").pk),
        "contact_run_pk": str(ContactRun.objects.filter(campaign=campaign).first().pk),
    }
    # Letter-side objects, for the letter, batch and review pages.
    batches = Batch.objects.filter(campaign=campaign)
    for state in ("submitted", "sent", "draft", "approved", "rejected", "sending"):
        b = batches.filter(state=state).order_by("-id").first()
        if b:
            fx[f"batch_{state}_pk"] = str(b.pk)
    letters = Letter.objects.filter(campaign=campaign).order_by("-id")
    # A replied letter has the longest timeline: audit, tracking and a reply.
    fx["letter_pk"] = str(letters.filter(state="replied").first().pk)
    draft = (letters.filter(state="draft").exclude(language="en").first()
             or letters.filter(state="draft").first())
    fx["draft_letter_pk"] = str(draft.pk)
    try:
        from letters.recipient import make_token
    except ImportError:  # before the recipient pages existed
        pass
    else:
        fx["recipient_token"] = make_token(
            Letter.objects.get(pk=fx["letter_pk"]).idempotency_key)
    reply = InboundMessage.objects.order_by("-id").first()
    fx["reply_pk"] = str(reply.pk) if reply else ""
    fx["suppression_pk"] = str(Suppression.objects.order_by("id").first().pk)
    return fx


@dataclass
class Result:
    page: Page
    url: str = ""
    status: int = 0
    times: list[float] = field(default_factory=list)
    queries: int = 0
    slowest_ms: float = 0.0
    slowest_sql: str = ""
    size: int = 0
    note: str = ""

    def pct(self, p: float) -> float:
        """Nearest-rank percentile (p95 of 20 runs is the 19th fastest)."""
        ordered = sorted(self.times)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def staff_route_names() -> dict[str, list[str]]:
    """Named routes of the staff app (admin, webhooks and auth views left out) → arg names."""
    from django.urls import URLPattern, URLResolver, get_resolver

    skip_prefixes = ("admin/", "anymail/")
    skip_names = {"login", "logout", "password_change", "password_change_done"}
    found: dict[str, list[str]] = {}

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if route.startswith(skip_prefixes):
                continue
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and p.name and p.name not in skip_names:
                found[p.name] = list(p.pattern.converters)
    walk(get_resolver().url_patterns, "")
    return found


def build_url(page: Page, fx: dict[str, str]) -> str:
    from django.urls import reverse

    def value(key: str) -> str:
        if key.startswith("="):
            return key[1:]
        if key not in fx:
            raise KeyError(f"no fixture {key!r} for page {page.name!r}")
        return fx[key]

    url = reverse(page.route, args=[value(a) for a in page.args])
    if page.query:
        url += "?" + urlencode({k: value(v) for k, v in page.query.items()})
    return url


def measure(page: Page, client, fx, runs: int, warmup: int) -> Result:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    res = Result(page)
    try:
        res.url = build_url(page, fx)
    except KeyError as exc:
        res.note = str(exc)
        return res
    for _ in range(warmup):
        response = client.get(res.url, secure=True)
        res.status = response.status_code
        if res.status != 200:
            res.note = f"HTTP {res.status}"
            return res
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(res.url, secure=True)
        res.times.append((time.perf_counter() - start) * 1000)
    # Counted in a separate request so recording SQL does not add to the timings.
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(res.url, secure=True)
    res.size = len(response.content)
    res.queries = len(ctx.captured_queries)
    if ctx.captured_queries:
        worst = max(ctx.captured_queries, key=lambda q: float(q["time"]))
        res.slowest_ms = float(worst["time"]) * 1000
        res.slowest_sql = worst["sql"]
    return res


def explain(sql: str) -> str:
    from django.db import connection

    if not sql.lstrip().upper().startswith("SELECT"):
        return "    (not a SELECT)"
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join("    " + row[0] for row in cur.fetchall())


# --- main --------------------------------------------------------------------------------

def unmigrated_changes() -> list[str]:
    """What `makemigrations` would write now (nothing is written)."""
    from django.apps import apps
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState

    loader = MigrationLoader(None, ignore_no_migrations=True)
    changes = MigrationAutodetector(
        loader.project_state(), ProjectState.from_apps(apps)
    ).changes(graph=loader.graph)
    return [f"{label}: {op.describe()}" for label, migrations in changes.items()
            for migration in migrations for op in migration.operations]


def prepare_database(url: str, reuse: bool) -> tuple[str, bool]:
    """The bench database URL, and whether it must be seeded (False: reuse what is there)."""
    import psycopg2

    base, dbname = url.rsplit("/", 1)
    # A database of its own: sys_bench (bench/run's) → sys_bench_pages; never a dev database.
    if "bench" not in dbname:
        dbname += "_bench_pages"
    elif not dbname.endswith("pages"):
        dbname += "_pages"
    conn = psycopg2.connect(base + "/postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname])
            exists = cur.fetchone() is not None
            if reuse and exists:
                return f"{base}/{dbname}", False
            cur.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
            cur.execute(f'CREATE DATABASE "{dbname}"')
    finally:
        conn.close()
    return f"{base}/{dbname}", True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1_000_000)
    parser.add_argument("--letters", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget", type=float, default=BUDGET_MS, help="p95 limit in ms")
    parser.add_argument("--only", default="", help="pages whose name contains this text")
    parser.add_argument("--reuse", action="store_true",
                        help="keep an existing bench database instead of seeding it again")
    parser.add_argument("--explain", action="store_true",
                        help="EXPLAIN ANALYZE the slowest query of every page, not only slow ones")
    args, _unknown = parser.parse_known_args()  # bench/run passes every bench the same args

    url, fresh = prepare_database(os.environ.get("DATABASE_URL") or DEFAULT_URL, args.reuse)
    os.environ["DATABASE_URL"] = url
    # Production-like settings: DEBUG off (cached templates, no debug cursor), HTTPS requests.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campaign.settings")
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnopqrstuv")
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ.setdefault("LOG_LEVEL", "ERROR")

    import django

    django.setup()
    import logging

    # A page that raises is reported in the table; its traceback need not flood the output.
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    print(f"database: {url.rsplit('/', 1)[1]}{'' if fresh else ' (reused)'}")
    if fresh:
        start = time.perf_counter()
        pending = unmigrated_changes()
        if pending:
            # Models ahead of their migrations (a new index awaiting makemigrations): build
            # the tables from the models, so the figures are those of the code as it is.
            from django.apps import apps
            from django.conf import settings

            settings.MIGRATION_MODULES = {a.label: None for a in apps.get_app_configs()}
            call_command("migrate", run_syncdb=True, verbosity=0)
            print(f"schema: from the models; no migration yet for: {', '.join(pending)}")
        else:
            call_command("migrate", verbosity=0)
            print("schema: migrations")
        print(f"  migrate {time.perf_counter() - start:.1f} s", flush=True)
        start = time.perf_counter()
        with connection.cursor() as cur:
            seeder = Seeder(cur, connection, args.hosts, args.letters)
            seeder.seed()
        connection.close()  # measure on a fresh session, with the server's default settings
        print(f"seed total: {time.perf_counter() - start:.1f} s")

    with connection.cursor() as cur:
        counts = {}
        for table in ("campaign_host", "campaign_sighting", "probes_proberesult",
                      "probes_contact", "letters_letter", "letters_letterhost", "letters_batch",
                      "campaign_auditevent"):
            cur.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cur.fetchone()[0]
    print("rows: " + "  ".join(f"{k.split('_', 1)[1]}={v:,}" for k, v in counts.items()))

    fx = discover()
    users = {u.username: u for u in get_user_model().objects.filter(
        username__in=[ADMIN, STAFF, REVIEWER])}
    clients: dict[str, Client] = {}
    routes = staff_route_names()
    results: list[Result] = []
    for page in PAGES:
        if args.only and args.only.lower() not in page.name.lower():
            continue
        if page.route not in routes:
            results.append(Result(page, note=f"no route {page.route!r} yet"))
            continue
        if page.user not in clients:
            clients[page.user] = Client()
            if page.user:
                clients[page.user].force_login(users[page.user])
        try:
            results.append(measure(page, clients[page.user], fx, args.runs, args.warmup))
        except Exception as exc:  # a broken page is reported, the others still measured
            results.append(Result(page, note=f"error: {type(exc).__name__}: {exc}"[:200]))

    print(f"\n{args.runs} timed requests per page after {args.warmup} warm-ups; "
          f"server time in ms; budget p95 <= {args.budget:.0f} ms")
    head = (f"{'page':<36} {'p50':>7} {'p95':>7} {'max':>7} {'queries':>7} "
            f"{'slowest q':>9} {'KB':>6}")
    print(head)
    print("-" * len(head))
    slow = []
    for r in results:
        if not r.times:
            print(f"{r.page.name:<36} {'—':>7}  {r.note}")
            continue
        p95 = r.pct(95)
        flag = ""
        if p95 > args.budget:
            flag = "  << OVER BUDGET"
            slow.append(r)
        print(f"{r.page.name:<36} {r.pct(50):7.1f} {p95:7.1f} {max(r.times):7.1f} "
              f"{r.queries:7d} {r.slowest_ms:9.1f} {r.size / 1024:6.0f}{flag}")
    failed = [r for r in results if not r.times and not r.note.startswith("no route")]
    print(f"\npages: {len(results)}  measured: {sum(1 for r in results if r.times)}  "
          f"over budget: {len(slow)}  failed: {len(failed)}")

    covered = {p.route for p in PAGES} | NOT_PAGES
    missing = sorted(set(routes) - covered)
    if missing:
        print("routes with no line in PAGES (add them): " + ", ".join(
            f"{name}({', '.join(routes[name])})" for name in missing))

    for r in results if args.explain else slow:
        if not r.slowest_sql:
            continue
        print(f"\n== {r.page.name}: {r.url}\n   slowest query ({r.slowest_ms:.1f} ms):\n"
              f"    {r.slowest_sql[:1500]}\n   plan:")
        plan = explain(r.slowest_sql)
        print(plan)
        server_ms = [float(line.split(":")[1].split()[0]) for line in plan.splitlines()
                     if "Execution Time:" in line]
        if server_ms and r.slowest_ms > 10 and r.slowest_ms > 5 * server_ms[0]:
            print(f"   note: PostgreSQL runs it in {server_ms[0]:.1f} ms; the other "
                  f"{r.slowest_ms - server_ms[0]:.0f} ms go to sending and decoding its rows "
                  "(a large column fetched but not shown? defer it)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
