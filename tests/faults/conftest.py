"""A dedicated Redis and a real Celery worker process, both owned (and broken) by the tests.

The worker is `celery -A campaign worker` in its own process group with the test database
in DATABASE_URL, so it sees what the tests commit (transactional_db) and can be SIGKILLed
like an OOM-killed or crashed node. The Redis server listens on its own port with its own
data directory, run as in docker-compose (append-only file), so restarting it disturbs
nobody else's broker.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery

from devtools.lab import LoopThread, smtp_server

REPO = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class RedisServer:
    def __init__(self, port: int, data_dir: Path) -> None:
        self.port, self.data_dir = port, data_dir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir),
             "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, 10, f"redis on port {self.port}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(" ".join(words).encode() + b"\r\n")
            return sock.recv(1024)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # redis flushes the append-only file on SIGTERM
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def redis_server():
    data_dir = Path(tempfile.mkdtemp(prefix="sys-faults-redis-"))
    server = RedisServer(free_port(), data_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


class Worker:
    """One `celery worker` process group; start() again after kill() is a restart."""

    def __init__(self, env: dict[str, str], log_dir: Path, pool: str, concurrency: int,
                 queues: str = "", name: str = "faults") -> None:
        self.env, self.log_dir, self.pool, self.concurrency = env, log_dir, pool, concurrency
        self.queues, self.name = queues, name
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.log = self.log_dir / f"worker-{self.name}-{self.starts}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [CELERY, "-A", "campaign", "worker", f"--pool={self.pool}",
                 f"--concurrency={self.concurrency}", "--loglevel=INFO", "--without-gossip",
                 "--without-mingle", "--without-heartbeat", "-n",
                 f"{self.name}.{self.starts}@%h", *(["-Q", self.queues] if self.queues else [])],
                cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes the children too
            )
        wait_for(lambda: b" ready." in self.log.read_bytes() or self.proc.poll() is not None,
                 30, "the worker to be ready")
        assert self.proc.poll() is None, self.log.read_text()[-3000:]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children): no shutdown, no ack."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def children(self) -> list[int]:
        """The pool processes (prefork children) of the running worker."""
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                found.append(int(stat.parent.name))
        return found

    def kill_children(self) -> list[int]:
        """SIGKILL every pool process, as the OOM killer would; the main process lives on."""
        killed = self.children()
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        return killed

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:]
                         for p in sorted(self.log_dir.glob(f"worker-{self.name}-*.log")))


@pytest.fixture
def worker_env(transactional_db, redis_server, tmp_path):
    """The environment of a worker that shares this test's database and the dedicated Redis."""
    from django.db import connection

    db = connection.settings_dict
    redis_server.command("FLUSHALL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "tests.faults.worker_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_server.url,
        "CELERY_BROKER_URL": redis_server.url,
        "CELERY_RESULT_BACKEND": redis_server.url,
        "SYS_VAR_DIR": str(tmp_path / "var"),
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture
def start_worker(worker_env, tmp_path):
    workers: list[Worker] = []

    def start(pool: str = "solo", concurrency: int = 1, queues: str = "", name: str = "",
              **extra_env: str) -> Worker:
        name = name or f"faults{len(workers) + 1}"
        worker = Worker({**worker_env, **extra_env}, tmp_path, pool, concurrency, queues, name)
        workers.append(worker)
        worker.start()
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def broker(redis_server):
    """A producer on the dedicated Redis: tasks are sent by name, as the web process does."""
    from django.conf import settings

    app = Celery("faults-producer", broker=redis_server.url, set_as_current=False)
    app.conf.task_serializer = "json"
    # Routed as the web process routes them: each task to its queue.
    app.conf.task_queues = settings.CELERY_TASK_QUEUES
    app.conf.task_routes = settings.CELERY_TASK_ROUTES
    app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
    yield app
    app.close()


@pytest.fixture
def lab():
    """Slow fake relays on loopback, on an event loop in this process: (loop, start, handler)."""
    thread = LoopThread()
    servers: list = []

    async def slow_smtp(reader, writer, server):
        await asyncio.sleep(0.15)  # a slow relay: keeps the run going long enough to be killed
        await smtp_server(reader, writer, server)

    def start(server):
        servers.append(thread.run(server.start()))
        return servers[-1]

    yield thread, start, slow_smtp
    for server in servers:
        thread.run(server.close())
    thread.stop()
