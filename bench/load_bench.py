"""Load benchmark: 20 staff sessions browse while a 1M-line import and a probe run go on.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sys_bench_load \\
        .venv/bin/python bench/load_bench.py [--sessions 20] [--duration 120] [--baseline 20]
            [--hosts 500000] [--feed-lines 1000000] [--think 0.5-2.0] [--workers 3]
            [--cap 240] [--keep] [--json PATH]

Everything is real and on loopback: a database of its own (named like pages_bench's: the one
in DATABASE_URL if its name contains "bench" and ends in "load", else `<name>_load` or
`<name>_bench_load`; dropped at the end unless --keep) is migrated and seeded with
pages_bench's seeder (--hosts hosts across every state, with sightings, probe results,
contacts, batches and --letters letters); 20 staff users are added (role staff, the
campaign's agency). Then the app runs as in docker-compose.yml: gunicorn (--workers sync
workers) on a free 127.0.0.1 port and one Celery worker (concurrency 2) on a Redis server
of the bench's own (a throw-away `redis-server` on a free port; --redis-url uses another),
and the demo lab (`manage.py run_lab` on --lab-base, 127.0.77.x) with PROBE_ALLOWED_NETWORKS
and PROBE_LAB_ONLY set, so a probe can reach nothing but the lab.

Each session logs in through the real login form (GET for the CSRF cookie, POST), then for
--duration seconds fetches a random page of the staff mix (every pages_bench page the staff
role may open, plus the live import's and probe run's pages and their status JSON, which
those pages poll), waiting --think seconds (uniform) between pages like a person reading.
After --baseline seconds of browsing alone, `manage.py import_feed --background` queues a
generated --feed-lines feed into the big campaign and `manage.py probe_hosts --background`
probes the lab campaign's 12 hosts; a finished probe run is followed by another while the
sessions browse.

Printed: requests, errors, requests/s, overall and per-page p50/p95/max (client-side ms,
connect to last byte) beside gunicorn's own time in the app (from its access log: the
difference is the wait for a free worker), p95 before, while and after the import, the
import's time under load, the probe runs' verdict counts against what the lab's hosts are,
where the CPU went (the bench's processes against other work on the machine), and OK/SLOW
against the 500 ms p95 target. The slowest pages are then timed once more in-process with
the load over (pages_bench.measure: queries, slowest query), which tells a slow view from a
busy machine.
The figures are also written as JSON (--json, default var/bench/load_bench.json) for
bench/reliability.py.

Bounded: the whole run (seeding included) is stopped after --cap seconds; every server it
starts (gunicorn, worker, lab, redis) is in its own process group, killed with its children
at the end, also on error or Ctrl-C; the commands it runs have timeouts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
sys.path[:0] = [str(REPO), str(BENCH)]

import pages_bench  # noqa: E402  (bench/ on the path: the seeder and the page list)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/sys_bench_load"
DEFAULT_JSON = REPO / "var" / "bench" / "load_bench.json"
TARGET_MS = 500.0
PASSWORD = "load-bench-password-2026"
LAB_SLUG = "load-lab"
BIN = Path(sys.executable).parent
# Pages of pages_bench's list the staff role may not open (agency settings and templates need
# change_campaign, the review queue review_batch): the sessions are staff, so they are left out.
NOT_STAFF = {"agency_list", "agency_settings", "template_edit", "review_queue"}


class BenchTimeout(Exception):
    pass


def log(message: str) -> None:
    print(message, flush=True)


# --- child processes --------------------------------------------------------------------------

class Children:
    """Every process the bench starts, each in its own process group (killed with its kids)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = (self.log_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.procs[name] = proc
        return proc

    def log_text(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_for(self, name: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        proc = self.procs[name]
        while time.monotonic() < deadline:
            if ready():
                return
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}):\n"
                                   f"{self.log_text(name)[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"{name} not ready after {timeout:.0f} s:\n"
                           f"{self.log_text(name)[-3000:]}")

    def stop_all(self) -> None:
        live = [p for p in self.procs.values() if p.poll() is None]
        for proc in live:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 8
        for proc in live:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            try:  # the group too: a worker's pool children outlive a dead parent
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """A manage.py command in a child process; its last line of output."""
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


# --- database -----------------------------------------------------------------------------------

def bench_database_url(url: str) -> str:
    base, name = url.rsplit("/", 1)
    # A database of its own: sys_bench (bench/run's) → sys_bench_load; never a dev database.
    if "bench" not in name:
        name += "_bench_load"
    elif not name.endswith("load"):
        name += "_load"
    return f"{base}/{name}"


def admin_sql(url: str, *statements: str) -> None:
    import psycopg2

    base = url.rsplit("/", 1)[0]
    conn = psycopg2.connect(base + "/postgres", connect_timeout=10)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


# --- the browsing sessions ----------------------------------------------------------------------

@dataclass
class Hit:
    at: float  # seconds since the load started
    page: str
    url: str
    status: int
    ms: float
    error: str = ""


@dataclass
class Live:
    """Ids of the running import and probe run: the live pages follow them."""

    import_id: int | None = None
    run_id: int | None = None


def live_pages(slug: str, lab_slug: str, live: Live) -> list[tuple[str, str]]:
    out = []
    if live.import_id:
        out += [("import (live, 1M lines)", f"/c/{slug}/imports/{live.import_id}/"),
                ("import status JSON (live)", f"/c/{slug}/imports/{live.import_id}/status.json")]
    if live.run_id:
        out += [("probe run (live, lab)", f"/c/{lab_slug}/probes/{live.run_id}/"),
                ("probe run status JSON (live)",
                 f"/c/{lab_slug}/probes/{live.run_id}/status.json")]
    return out


def login(client, username: str) -> None:
    page = client.get("/login/")
    page.raise_for_status()
    token = client.cookies.get("csrftoken")
    if not token:
        raise RuntimeError("the login page set no csrftoken cookie")
    answer = client.post("/login/", data={"username": username, "password": PASSWORD,
                                           "csrfmiddlewaretoken": token, "next": ""},
                         headers={"Referer": str(client.base_url) + "/login/"})
    if answer.status_code != 302 or "sessionid" not in client.cookies:
        raise RuntimeError(f"login of {username} failed: HTTP {answer.status_code}")


def browse(client, pages: list[tuple[str, str]], slug: str, lab_slug: str, live: Live,
           t0: float, until: float, think: tuple[float, float], seed: int,
           hits: list[Hit]) -> None:
    rng = random.Random(seed)
    time.sleep(rng.uniform(0, think[1]))  # sessions do not click in step
    while time.monotonic() < until:
        name, url = rng.choice(pages + live_pages(slug, lab_slug, live))
        start = time.monotonic()
        try:
            response = client.get(url)
            ms = (time.monotonic() - start) * 1000
            error = "" if response.status_code == 200 else f"HTTP {response.status_code}"
            hits.append(Hit(start - t0, name, url, response.status_code, ms, error))
        except Exception as exc:  # a refused or timed-out request is an error, not a crash
            ms = (time.monotonic() - start) * 1000
            hits.append(Hit(start - t0, name, url, 0, ms,
                            f"{type(exc).__name__}: {exc}"[:200]))
        pause = rng.uniform(*think)
        if time.monotonic() + pause >= until:
            break
        time.sleep(pause)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile, as pages_bench."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else 0.0


# --- where the CPU went -------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: str) -> tuple[int, int, float] | None:
    """(parent pid, process group, CPU seconds used) of a process, None if it is gone."""
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(rest[1]), int(rest[2]), (int(rest[11]) + int(rest[12])) / CLOCK_TICKS


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class CpuSampler(threading.Thread):
    """CPU seconds of the bench's own processes (this one, its children and their process
    groups, the PostgreSQL backends of its database) against the whole machine's, so a run
    on a machine busy with other work says so."""

    def __init__(self, children: Children, dbname: str) -> None:
        super().__init__(daemon=True)
        self.children, self.dbname = children, dbname
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.backends: set[str] = set()
        self.stop = threading.Event()

    def _backends(self) -> set[str]:
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.dbname])
            return {str(row[0]) for row in cur.fetchall()}

    def sample(self, first: bool = False) -> None:
        groups = {p.pid for p in self.children.procs.values()}
        me = os.getpid()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            stat = _proc_stat(entry.name)
            if stat is None:
                continue
            ppid, pgrp, cpu = stat
            if (int(entry.name) == me or ppid == me or pgrp in groups
                    or entry.name in self.backends):
                if first:
                    self.first[entry.name] = cpu
                self.last[entry.name] = max(cpu, self.last.get(entry.name, 0.0))

    def run(self) -> None:
        from django.db import connection

        try:
            self.backends = self._backends()
            self.busy0, self.total0 = _machine_jiffies()
            self.sample(first=True)
            ticks = 0
            while not self.stop.wait(1.0):
                ticks += 1
                if ticks % 5 == 0:
                    self.backends |= self._backends()
                self.sample()
        finally:
            connection.close()

    def finish(self) -> dict:
        self.stop.set()
        self.join(5)
        self.sample()
        busy1, total1 = _machine_jiffies()
        cores = os.cpu_count() or 1
        seconds = (total1 - self.total0) / CLOCK_TICKS / cores
        busy = (busy1 - self.busy0) / CLOCK_TICKS
        own = sum(v - self.first.get(pid, 0.0) for pid, v in self.last.items())
        return {"cores": cores, "seconds": round(seconds, 1),
                "machine_busy_cores": round(busy / seconds, 2) if seconds else 0,
                "bench_cores": round(own / seconds, 2) if seconds else 0,
                "other_cores": round(max(0.0, busy - own) / seconds, 2) if seconds else 0}


# --- the background work: import and probe runs -------------------------------------------------

@dataclass
class Work:
    import_id: int | None = None
    import_status: str = ""
    import_lines: int = 0
    import_summary: str = ""
    import_seconds: float | None = None  # started_at → finished_at, as the worker ran it
    import_window: tuple[float, float | None] = (0.0, None)  # load-relative, for the split
    runs: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def watch(work: Work, live: Live, env: dict[str, str], lab_slug: str, by: str, t0: float,
          stop: threading.Event, probe_until: float) -> None:
    """Follow the import and the probe runs; start the next probe run when one finishes."""
    from django.db import connection

    from campaign.models import FeedImport
    from probes.verification.models import ProbeRun

    try:
        while not stop.is_set():
            if work.import_id and work.import_seconds is None:
                fi = FeedImport.objects.get(pk=work.import_id)
                work.import_status, work.import_lines = fi.status, fi.lines
                if fi.status == FeedImport.RUNNING and work.import_window[0] == 0.0:
                    work.import_window = (time.monotonic() - t0, None)
                if fi.status in (FeedImport.DONE, FeedImport.FAILED):
                    work.import_window = (work.import_window[0] or 0.0, time.monotonic() - t0)
                    work.import_seconds = (fi.finished_at - fi.started_at).total_seconds()
                    work.import_summary = fi.summary_line if fi.status == FeedImport.DONE \
                        else f"failed: {fi.error[:300]}"
            if live.run_id:
                run = ProbeRun.objects.get(pk=live.run_id)
                if run.status in (ProbeRun.DONE, ProbeRun.FAILED):
                    work.runs.append({
                        "id": run.pk, "status": run.status, "hosts": run.total,
                        "open": run.open_count, "not_open": run.not_open_count,
                        "unreachable": run.unreachable_count, "error": run.error_count,
                        "seconds": (run.finished_at - run.created_at).total_seconds(),
                    })
                    live.run_id = None
                    if time.monotonic() + 10 < probe_until:
                        live.run_id = start_probe_run(env, lab_slug, by)
            stop.wait(0.5)
    except Exception as exc:
        work.errors.append(f"watcher: {type(exc).__name__}: {exc}")
    finally:
        connection.close()


def start_probe_run(env: dict[str, str], lab_slug: str, by: str) -> int:
    line = manage(env, "probe_hosts", "--campaign", lab_slug, "--background", "--by", by)
    return int(re.fullmatch(r"run=(\d+)", line).group(1))


# --- main ---------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120, help="seconds of browsing")
    parser.add_argument("--baseline", type=float, default=20,
                        help="seconds of browsing alone before the import and probes start")
    parser.add_argument("--think", default="0.5-2.0",
                        help="seconds between a session's pages, MIN-MAX (uniform)")
    parser.add_argument("--hosts", type=int, default=500_000, help="hosts seeded")
    parser.add_argument("--letters", type=int, default=50_000, help="letters seeded")
    parser.add_argument("--feed-lines", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers "
                        "(docker-compose.yml runs 3)")
    parser.add_argument("--target", type=float, default=TARGET_MS, help="page p95 target, ms")
    parser.add_argument("--cap", type=float, default=240,
                        help="hard limit on the whole run in seconds, seeding included")
    parser.add_argument("--lab-base", default="127.0.77", help="the lab's 127.X.Y")
    parser.add_argument("--redis-url", default="",
                        help="use this Redis (its database is flushed) instead of a private "
                             "redis-server")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where the figures go")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--profile", type=int, default=3,
                        help="re-time the N slowest pages in-process at the end (0: none)")
    args, _unknown = parser.parse_known_args()  # bench/run passes every bench the same args
    think = tuple(float(x) for x in args.think.split("-", 1))
    if len(think) != 2 or think[0] > think[1] or think[0] < 0:
        parser.error("--think is MIN-MAX seconds, e.g. 0.5-2.0")

    started = time.monotonic()

    def on_alarm(signum, frame):
        raise BenchTimeout(f"stopped by the --cap of {args.cap:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(143))
    signal.alarm(int(args.cap))

    url = bench_database_url(os.environ.get("DATABASE_URL") or DEFAULT_URL)
    dbname = url.rsplit("/", 1)[1]
    tmp = Path(tempfile.mkdtemp(prefix="sys-load-bench-"))
    children = Children(tmp)
    created_db = False
    status = 1
    try:
        # --- the environment every process shares -------------------------------------------
        if args.redis_url:
            redis_url = args.redis_url
        else:
            port = free_port()
            children.start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--protected-mode",
                                     "yes"], dict(os.environ))
            children.wait_for("redis", lambda: redis_ping(port), 10)
            redis_url = f"redis://127.0.0.1:{port}/0"
        from devtools import lab as lab_module

        base = lab_module.check_base(args.lab_base)
        lab_env = {
            "PROBE_ALLOWED_NETWORKS": "127.0.0.0/8",
            "PROBE_LAB_ONLY": "1",
            "PROBE_CANARY_ADDR": f"{base}.{lab_module.CANARY_OCTET}:{lab_module.CANARY_PORT}",
            "PROBE_CANARY_DOMAIN": lab_module.CANARY_DOMAIN,
            "RDAP_BOOTSTRAP_URL": f"http://{base}.{lab_module.RDAP_OCTET}:"
                                  f"{lab_module.RDAP_PORT}/bootstrap/",
            "WHOIS_IANA_SERVER": f"{base}.{lab_module.WHOIS_OCTET}:{lab_module.WHOIS_PORT}",
            "PROBE_TIMEOUT": "3",
        }
        os.environ.update({
            "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "campaign.settings",
            "DEBUG": "0",  # production settings: cached templates, no debug cursor
            "SECRET_KEY": os.environ.get("SECRET_KEY")
            or "load-bench-only-secret-key-0123456789abcdefghijklmnopqrstuv",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            # Plain HTTP on loopback (no TLS proxy in front): cookies must come back over it.
            "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url,
            "CELERY_RESULT_BACKEND": redis_url,
            "SYS_VAR_DIR": str(tmp / "var"),
            "EMAIL_URL": "console:",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **lab_env,
        })
        env = dict(os.environ)
        if args.redis_url:
            import redis

            redis.Redis.from_url(redis_url).flushdb()

        # --- database: create, migrate, seed -------------------------------------------------
        admin_sql(url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)',
                  f'CREATE DATABASE "{dbname}"')
        created_db = True
        log(f"database: {dbname}  redis: {redis_url}  lab: {base}.x  cap: {args.cap:.0f} s")
        import django

        django.setup()
        import logging

        logging.getLogger("django.request").setLevel(logging.CRITICAL)
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connection

        from campaign.imports import create_import, run_import
        from campaign.services import add_user, create_campaign

        t = time.monotonic()
        pending = pages_bench.unmigrated_changes()
        if pending:  # models ahead of their migrations: measure the code as it is (as pages_bench)
            from django.apps import apps
            from django.conf import settings

            settings.MIGRATION_MODULES = {a.label: None for a in apps.get_app_configs()}
            call_command("migrate", run_syncdb=True, verbosity=0)
            log(f"schema: from the models; no migration yet for: {', '.join(pending)}")
        else:
            call_command("migrate", verbosity=0)
        log(f"  migrate {time.monotonic() - t:.1f} s")
        t = time.monotonic()
        with connection.cursor() as cur:
            pages_bench.Seeder(cur, connection, args.hosts, args.letters).seed()
        log(f"seed total: {time.monotonic() - t:.1f} s")

        t = time.monotonic()
        staff = [f"load-staff-{i:02d}" for i in range(1, args.sessions + 1)]
        first = add_user(username=staff[0], role="staff", password=PASSWORD,
                         agency_name="Bench Agency")
        # One PBKDF2 hash for all (the same password): 20 hashings would cost ~10 s of CPU.
        from unittest import mock

        def same_hash(user, raw):
            user.password = first.password

        with mock.patch.object(get_user_model(), "set_password", same_hash):
            for name in staff[1:]:
                add_user(username=name, role="staff", password=PASSWORD,
                         agency_name="Bench Agency")
        lab_campaign = create_campaign(slug=LAB_SLUG, agency_name="Bench Agency",
                                       kinds="relay,proxy", name="Lab hosts (load bench)")
        for kind, text in (("relay", lab_module.relay_feed(base)),
                           ("proxy", lab_module.proxy_feed(base))):
            path = tmp / f"lab-{kind}.txt"
            path.write_text(text)
            fi = create_import(campaign=lab_campaign, source=str(path), kind=kind)
            run_import(fi.pk)
        fx = pages_bench.discover()
        routes = pages_bench.staff_route_names()
        pages = []
        for page in pages_bench.PAGES:
            if page.user == pages_bench.ADMIN and page.route not in NOT_STAFF \
                    and page.route in routes:
                try:
                    pages.append((page.name, pages_bench.build_url(page, fx)))
                except KeyError:
                    pass
        feed = tmp / "feed-1m.txt"
        import import_bench

        import_bench.generate(feed, args.feed_lines)
        connection.close()
        log(f"users, lab campaign, feed of {args.feed_lines:,} lines: "
            f"{time.monotonic() - t:.1f} s")

        # --- the lab, the worker, the web app ------------------------------------------------
        t = time.monotonic()
        python = sys.executable
        children.start("lab", [python, "manage.py", "run_lab", "--bind-base", base], env)
        children.wait_for("lab", lambda: "lab ready" in children.log_text("lab"), 20)
        children.start("worker", [str(BIN / "celery"), "-A", "campaign", "worker",
                                  "--concurrency=2", "--loglevel=INFO", "--without-gossip",
                                  "--without-mingle", "-n", f"loadbench{os.getpid()}@%h"],
                       {**env, "LOG_LEVEL": "INFO"})
        children.wait_for("worker", lambda: " ready." in children.log_text("worker"), 60)
        web_port = free_port()
        access_log = tmp / "access.log"
        children.start("gunicorn", [str(BIN / "gunicorn"), "campaign.wsgi", "--bind",
                                    f"127.0.0.1:{web_port}", "--workers", str(args.workers),
                                    "--timeout", "60", "--access-logfile", str(access_log),
                                    "--access-logformat", "%(r)s %(s)s %(D)s"], env)
        import httpx

        base_url = f"http://127.0.0.1:{web_port}"

        def web_ready() -> bool:
            try:
                return httpx.get(base_url + "/login/", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        children.wait_for("gunicorn", web_ready, 30)
        log(f"lab, worker, gunicorn ({args.workers} workers) up: {time.monotonic() - t:.1f} s")

        # --- sessions: log in, check the page mix --------------------------------------------
        t = time.monotonic()
        clients = [httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)
                   for _ in staff]
        errors: list[str] = []
        threads = [threading.Thread(target=lambda c=c, u=u: _try(login, errors, c, u))
                   for c, u in zip(clients, staff, strict=True)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise RuntimeError("; ".join(errors[:3]))
        login_s = time.monotonic() - t
        refused = []
        for name, page_url in list(pages):
            code = clients[0].get(page_url).status_code
            if code != 200:
                refused.append(f"{name} (HTTP {code})")
                pages.remove((name, page_url))
        log(f"{len(staff)} sessions logged in through the form: {login_s:.1f} s; "
            f"page mix: {len(pages)} staff pages + 4 live ones"
            + (f"; left out: {', '.join(refused)}" if refused else ""))

        # --- the load ---------------------------------------------------------------------------
        remaining = args.cap - (time.monotonic() - started)
        duration = min(args.duration, remaining - 45)  # leave time to report and tear down
        if duration < 20:
            raise BenchTimeout(f"only {remaining:.0f} s left of the --cap for the load")
        live, work, hits = Live(), Work(), []
        stop = threading.Event()
        access_offset = access_log.stat().st_size if access_log.exists() else 0
        sampler = CpuSampler(children, dbname)
        sampler.start()
        t0 = time.monotonic()
        until = t0 + duration
        sessions = [threading.Thread(target=browse, args=(c, pages, pages_bench.SLUG, LAB_SLUG,
                                                           live, t0, until, think, i, hits),
                                     daemon=True)
                    for i, c in enumerate(clients)]
        for th in sessions:
            th.start()
        time.sleep(min(args.baseline, duration / 2))
        line = manage(env, "import_feed", "--campaign", pages_bench.SLUG, "--kind", "relay",
                      "--background", "--by", staff[0], str(feed))
        work.import_id = live.import_id = int(re.match(r"import=(\d+)", line).group(1))
        live.run_id = start_probe_run(env, LAB_SLUG, staff[0])
        watcher = threading.Thread(target=watch, args=(work, live, env, LAB_SLUG, staff[0],
                                                       t0, stop, until), daemon=True)
        watcher.start()
        log(f"load: {len(staff)} sessions for {duration:.0f} s, think {think[0]:g}-{think[1]:g}"
            f" s; after {min(args.baseline, duration / 2):.0f} s, import #{work.import_id} "
            f"({args.feed_lines:,} lines) and probe runs over the lab started")
        for th in sessions:
            th.join()
        browse_end = time.monotonic() - t0
        cpu = sampler.finish()
        # The import may outlast the browsing: wait for it (within the cap) for its time.
        while work.import_seconds is None and not work.errors \
                and time.monotonic() - started < args.cap - 25:
            time.sleep(0.5)
        stop.set()
        watcher.join(10)
        load_avg = os.getloadavg()

        # --- figures ----------------------------------------------------------------------------
        server_ms = read_access_log(access_log, access_offset)
        report = summarise(hits, browse_end, work, args, len(staff), think, load_avg, login_s,
                           server_ms)
        report["cpu"] = cpu
        expected = Counter(h.verdict for h in lab_module.HOSTS)
        report["probe"]["expected_per_run"] = dict(expected)
        report["probe"]["misjudged_runs"] = sum(
            1 for r in work.runs if r["status"] != "done" or any(
                r[v] != expected.get(v, 0) for v in ("open", "not_open", "unreachable")))
        print_report(report)
        if args.profile and report["per_page"]:
            profile(report, args.profile, fx)
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        log(f"figures written to {out}")
        status = 0 if report["ok"] else 1
    except BenchTimeout as exc:
        log(f"load_bench: {exc}")
        status = 2
    finally:
        signal.alarm(0)
        children.stop_all()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: S110 (Django may not be set up yet)
            pass
        if created_db and not args.keep:
            try:
                admin_sql(url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            except Exception as exc:
                log(f"could not drop {dbname}: {exc}")
        elif created_db:
            log(f"database kept: {dbname}")
        if status != 0:
            log(f"logs: {tmp}")
        else:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        log(f"wall time {time.monotonic() - started:.0f} s")
    return status


def _try(fn, errors: list[str], *args) -> None:
    try:
        fn(*args)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")


def read_access_log(path: Path, offset: int) -> dict[str, list[float]]:
    """Gunicorn's time in the app per URL (ms), from the access log lines after `offset`.

    That time runs from the request read to the response written by a worker; the client's
    time adds the wait for a free worker (sync workers take one request at a time).
    """
    found: dict[str, list[float]] = defaultdict(list)
    if not path.exists():
        return found
    with path.open("rb") as f:
        f.seek(offset)
        for raw in f:
            parts = raw.decode("utf-8", "replace").split()
            # METHOD URL PROTOCOL STATUS MICROSECONDS
            if len(parts) == 5 and parts[0] == "GET" and parts[4].isdigit():
                found[parts[1]].append(int(parts[4]) / 1000)
    return found


def summarise(hits: list[Hit], browse_end: float, work: Work, args, sessions: int,
              think: tuple[float, float], load_avg, login_s: float,
              server_ms: dict[str, list[float]]) -> dict:
    by_page: dict[str, list[float]] = defaultdict(list)
    server_by_page: dict[str, list[float]] = defaultdict(list)
    page_of = {}
    for h in hits:
        by_page[h.page].append(h.ms)
        page_of[h.url] = h.page
    for url, values in server_ms.items():
        if url in page_of:
            server_by_page[page_of[url]] += values
    all_server = [v for values in server_by_page.values() for v in values]
    times = [h.ms for h in hits]
    start, end = work.import_window
    end = browse_end if end is None else end

    def phase(lo: float, hi: float) -> dict:
        ms = [h.ms for h in hits if lo <= h.at < hi]
        return {"seconds": round(max(0.0, hi - lo), 1), "requests": len(ms),
                "p50_ms": round(pct(ms, 50), 1), "p95_ms": round(pct(ms, 95), 1),
                "max_ms": round(max(ms, default=0), 1)}

    errors = [h for h in hits if h.error]
    p95 = pct(times, 95)
    runs = work.runs
    return {
        "date": dt.date.today().isoformat(),
        "sessions": sessions,
        "seconds": round(browse_end, 1),
        "think_s": list(think),
        "gunicorn_workers": args.workers,
        "hosts_seeded": args.hosts,
        "letters_seeded": args.letters,
        "login_s": round(login_s, 2),
        "requests": len(hits),
        "errors": len(errors),
        "error_samples": sorted({f"{h.page}: {h.error}" for h in errors})[:10],
        "requests_per_s": round(len(hits) / browse_end, 1) if browse_end else 0,
        "p50_ms": round(pct(times, 50), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(max(times, default=0), 1),
        "server_p95_ms": round(pct(all_server, 95), 1),
        "phases": {"before the import": phase(0, start) if start else None,
                   "while the import ran": phase(start, end) if start else None,
                   "after the import": phase(end, browse_end) if start and end < browse_end
                   else None},
        # kept for readers of older figures
        "during_import": phase(start, end) if start else {"requests": 0, "p95_ms": 0,
                                                          "max_ms": 0},
        "per_page": sorted(({"page": name, "requests": len(v), "p50_ms": round(pct(v, 50), 1),
                             "p95_ms": round(pct(v, 95), 1), "max_ms": round(max(v), 1),
                             "server_p95_ms": round(pct(server_by_page.get(name, []), 95), 1)}
                            for name, v in by_page.items()), key=lambda r: -r["p95_ms"]),
        "import": {"id": work.import_id, "lines": args.feed_lines, "status": work.import_status,
                   "seconds": None if work.import_seconds is None
                   else round(work.import_seconds, 1),
                   "summary": work.import_summary,
                   "overlap_s": round(min(end, browse_end) - start, 1) if start else 0},
        "probe": {"runs": len(runs), "hosts_probed": sum(r["hosts"] for r in runs),
                  "open": sum(r["open"] for r in runs),
                  "not_open": sum(r["not_open"] for r in runs),
                  "unreachable": sum(r["unreachable"] for r in runs),
                  "error": sum(r["error"] for r in runs),
                  "run_seconds": [round(r["seconds"], 1) for r in runs]},
        "watch_errors": work.errors,
        "load_avg": [round(x, 2) for x in load_avg],
        "target_ms": args.target,
        "ok": bool(hits) and p95 <= args.target and not errors and not work.errors
        and work.import_status == "done",
    }


def print_report(r: dict) -> None:
    log(f"\n{r['requests']} requests in {r['seconds']:.0f} s ({r['requests_per_s']} req/s) by "
        f"{r['sessions']} sessions, think {r['think_s'][0]:g}-{r['think_s'][1]:g} s; "
        f"errors: {r['errors']}")
    for sample in r["error_samples"]:
        log(f"  error: {sample}")
    log("client ms: connect to last byte; app ms: gunicorn's time in the app (the rest is "
        "the wait for a free worker)")
    head = f"{'page':<40} {'n':>5} {'p50':>7} {'p95':>7} {'max':>7} {'app p95':>8}"
    log(head)
    log("-" * len(head))
    for p in r["per_page"]:
        flag = "  << over target" if p["p95_ms"] > r["target_ms"] else ""
        log(f"{p['page']:<40} {p['requests']:>5} {p['p50_ms']:7.1f} {p['p95_ms']:7.1f} "
            f"{p['max_ms']:7.1f} {p['server_p95_ms']:8.1f}{flag}")
    log("-" * len(head))
    log(f"{'all pages':<40} {r['requests']:>5} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f} "
        f"{r['max_ms']:7.1f} {r['server_p95_ms']:8.1f}")
    for name, ph in r["phases"].items():
        if ph:
            log(f"{'  ' + name + ' (' + format(ph['seconds'], '.0f') + ' s)':<40} "
                f"{ph['requests']:>5} {ph['p50_ms']:7.1f} {ph['p95_ms']:7.1f} "
                f"{ph['max_ms']:7.1f}")
    i = r["import"]
    log(f"\nimport of {i['lines']:,} lines under load: "
        + (f"{i['seconds']:.1f} s ({i['lines'] / i['seconds']:,.0f} lines/s), {i['summary']}"
           if i["seconds"] else f"not finished ({i['status']})")
        + f"; overlapped the browsing for {i['overlap_s']:.0f} s")
    p = r["probe"]
    log(f"probe runs over the lab: {p['runs']} runs, {p['hosts_probed']} hosts probed: "
        f"open={p['open']} not_open={p['not_open']} unreachable={p['unreachable']} "
        f"error={p['error']}; each run expected {p['expected_per_run']}, "
        f"misjudged runs: {p['misjudged_runs']}; run seconds {p['run_seconds']}")
    for e in r["watch_errors"]:
        log(f"  {e}")
    c = r.get("cpu")
    if c:
        log(f"CPU while browsing ({c['seconds']:.0f} s, {c['cores']} cores): machine busy "
            f"{c['machine_busy_cores']:.2f} cores; the bench's processes (web, worker, lab, "
            f"PostgreSQL backends, client) {c['bench_cores']:.2f}; other work on the machine "
            f"{c['other_cores']:.2f}")
    log(f"load average at the end: {r['load_avg']}")
    verdict = "OK" if r["ok"] else "SLOW" if r["p95_ms"] > r["target_ms"] else "FAILED"
    log(f"\n{verdict}: page p95 {r['p95_ms']:.0f} ms (target < {r['target_ms']:.0f} ms), "
        f"{r['errors']} errors, import {r['import']['status'] or 'not started'}")


def profile(report: dict, n: int, fx: dict) -> None:
    """The slowest pages timed again in-process on the quiet system: a slow view or a busy box?"""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="load-staff-01"))
    by_name = {p.name: p for p in pages_bench.PAGES}
    log(f"\nthe {n} slowest pages, quiet, in-process (server time, 5 runs):")
    # The live pages' objects are finished by now: not worth timing again.
    for row in [r for r in report["per_page"] if r["page"] in by_name][:n]:
        page = by_name[row["page"]]
        res = pages_bench.measure(page, client, fx, runs=5, warmup=1)
        if not res.times:
            log(f"  {page.name}: {res.note}")
            continue
        row["quiet_p95_ms"] = round(res.pct(95), 1)
        row["queries"] = res.queries
        log(f"  {page.name:<38} under load p95 {row['p95_ms']:7.1f}  quiet p95 "
            f"{res.pct(95):7.1f}  queries {res.queries:3d}  slowest query "
            f"{res.slowest_ms:6.1f} ms: {res.slowest_sql[:120]}")


if __name__ == "__main__":
    sys.exit(main())
