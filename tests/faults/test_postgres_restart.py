"""PostgreSQL restarted under a running import: the import still ends, with exact counts.

The tests own the database server they restart: a throw-away cluster (initdb) on its own
port, never the machine's shared one. Everything talks to it through the project's own
commands (migrate, create_campaign, import_feed --background) and a real worker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest

from devtools.lab import LabServer, relay_everything, relay_nothing
from probes.verification.canary import CanaryServer
from tests.faults.conftest import REPO, Worker, free_port, wait_for

pytestmark = pytest.mark.faults

PG_BIN = next(Path("/usr/lib/postgresql").glob("*/bin"), Path("/usr/lib/postgresql/bin"))
FEED_LINES = 200_000


def as_postgres(*argv: str) -> subprocess.CompletedProcess:
    """Run a server binary as the postgres user (initdb and postgres refuse to run as root)."""
    command = [str(PG_BIN / argv[0]), *argv[1:]]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)


class Cluster:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sys-faults-pg-"))
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"

    def init(self) -> None:
        as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                    "--no-sync")
        self.start()

    def _ctl(self, action: str, *extra: str) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off")
        as_postgres("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o",
                    options, action, *extra)

    def start(self) -> None:
        self._ctl("start")

    def restart(self) -> None:
        self._ctl("restart", "-m", "fast")  # every client connection is cut

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._ctl("stop", "-m", "immediate")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"


@pytest.fixture
def cluster():
    server = Cluster()
    try:
        server.init()
        yield server
    finally:
        server.stop()


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


@pytest.fixture
def pg_env(cluster, redis_server, tmp_path):
    """A migrated database on the dedicated cluster, a campaign in it, and the worker's env."""
    redis_server.command("FLUSHALL")
    subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(cluster.port),
                    "-U", "postgres", "sys_pg"], check=True, timeout=30)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "tests.faults.worker_settings",
        "DATABASE_URL": cluster.url("sys_pg"),
        "REDIS_URL": redis_server.url, "CELERY_BROKER_URL": redis_server.url,
        "CELERY_RESULT_BACKEND": redis_server.url,
        "SYS_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1",
    })
    manage(env, "migrate", "-v0")
    manage(env, "create_campaign", "pg-2026", "--agency", "CERT-PG", "--kinds", "relay")
    return env


def query(cluster: Cluster, sql: str, *params) -> tuple | None:
    """One row from the dedicated database, or None while it is restarting."""
    try:
        with psycopg2.connect(cluster.url("sys_pg"), connect_timeout=2) as db:
            with db.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()
    except psycopg2.OperationalError:
        return None


def test_an_import_survives_a_postgres_restart_mid_feed(cluster, pg_env, tmp_path):
    feed = tmp_path / "feed.txt"
    with feed.open("w") as out:
        for n in range(FEED_LINES):
            out.write(f"{20 + n // 65536}.{n // 256 % 256}.{n % 256}.7\n")
    worker = Worker(pg_env, tmp_path, "solo", 1)
    worker.start()
    try:
        line = manage(pg_env, "import_feed", "--campaign", "pg-2026", "--kind", "relay",
                      "--background", str(feed))
        import_id = int(line.split()[0].removeprefix("import="))
        sql = "SELECT status, lines, added FROM campaign_feedimport WHERE id = %s"

        wait_for(lambda: (r := query(cluster, sql, import_id)) and r[0] == "running"
                 and r[1] > 0, 60, f"the import to be under way\n{worker.logs()}")
        cluster.restart()
        wait_for(lambda: (r := query(cluster, sql, import_id)) and r[0] == "done", 120,
                 f"the import to finish: {query(cluster, sql, import_id)}\n{worker.logs()}",
                 step=0.5)
        assert query(cluster, sql, import_id) == ("done", FEED_LINES, FEED_LINES)
        assert query(cluster, "SELECT count(*) FROM campaign_host") == (FEED_LINES,)
        assert query(cluster, "SELECT count(*) FROM campaign_sighting") == (FEED_LINES,)
    finally:
        worker.stop()


def test_a_probe_run_survives_a_postgres_restart_mid_chunk(cluster, pg_env, lab, tmp_path):
    thread, start, slow_smtp = lab
    hosts, expected_open = 60, 30
    feed = tmp_path / "relays.txt"
    with feed.open("w") as out:
        for n in range(1, hosts + 1):
            policy = relay_everything if n % 2 else relay_nothing
            server = start(LabServer(slow_smtp, host=f"127.0.78.{n}", options={"rcpt": policy}))
            out.write(f"127.0.78.{n}:{server.port}\n")
    from probes.verification.services import canary_key

    canary = start(CanaryServer(canary_key(), "127.0.0.9", 0))
    lab_env = {**pg_env, "PROBE_ALLOWED_NETWORKS": "127.0.0.0/8", "PROBE_LAB_ONLY": "1",
               "PROBE_TIMEOUT": "2", "PROBE_CANARY_DOMAIN": "canary.test",
               "PROBE_CANARY_ADDR": f"127.0.0.9:{canary.port}"}
    assert manage(lab_env, "import_feed", "--campaign", "pg-2026", "--kind", "relay",
                  str(feed)) == f"lines={hosts} added={hosts} known=0 rejected=0"
    worker = Worker(lab_env, tmp_path, "solo", 1)
    worker.start()
    try:
        run_id = int(manage(lab_env, "probe_hosts", "--campaign", "pg-2026",
                            "--background").removeprefix("run="))
        sql = "SELECT status, done, open_count, not_open_count FROM probes_proberun WHERE id = %s"
        wait_for(lambda: (r := query(cluster, sql, run_id)) and r[1] >= 5, 60,
                 f"the run to be under way\n{worker.logs()}")
        cluster.restart()
        assert query(cluster, sql, run_id)[1] < hosts
        wait_for(lambda: (r := query(cluster, sql, run_id)) and r[0] == "done", 120,
                 f"the run to finish: {query(cluster, sql, run_id)}\n{worker.logs()}",
                 step=0.5)
        assert query(cluster, sql, run_id) == ("done", hosts, expected_open,
                                                hosts - expected_open)
        assert query(cluster, "SELECT count(DISTINCT host_id), count(*) FROM "
                     "probes_proberesult WHERE run_id = %s", run_id) == (hosts, hosts)
    finally:
        worker.stop()
