"""bin/dev as a newcomer runs it: up on its own state directory and port, then SIGTERM stops
it and everything it started (lab, worker and its pool, beat, runserver and its reloader)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB_BASE = "127.0.93"  # neither a running demo's 127.0.42 nor test_lab's 127.0.77


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_members(sid: int) -> list[int]:
    """Processes of session `sid`: bin/dev was started in a session of its own."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (in parentheses, may hold spaces): state ppid pgrp sid
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def page_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return response.status == 200
    except OSError:
        return False


def test_bin_dev_runs_the_demo_and_stops_everything_on_sigterm(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PROBE_", "DJANGO_", "CELERY_", "RDAP_", "WHOIS_", "EMAIL_"))
           and k not in ("DATABASE_URL", "REDIS_URL", "DEBUG")}
    env.update(SYS_VAR_DIR=str(tmp_path / "var"), PORT=str(port), LAB_BASE=LAB_BASE,
               SYS_SKIP_BOOTSTRAP="1")
    out = tmp_path / "dev.out"
    with out.open("wb") as sink:
        dev = subprocess.Popen([str(REPO / "bin" / "dev")], cwd=REPO, env=env, stdout=sink,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not page_answers(f"http://127.0.0.1:{port}/login/"):
            assert dev.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(1)
        # The worker's output (where console mail is printed) reaches bin/dev's terminal.
        while "ready." not in out.read_text():
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(1)
        text = out.read_text()
        assert "celery@" in text
        assert "lab-relays.txt: lines=9 added=8 known=0 rejected=0" in text  # moved to the lab
        started = session_members(dev.pid)
        assert len(started) >= 6, started  # bin/dev, lab, worker (+ pool), beat, runserver ×2

        began = time.monotonic()
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=20) == 143
        while session_members(dev.pid) and time.monotonic() - began < 20:
            time.sleep(0.2)
        assert session_members(dev.pid) == [], "left running after SIGTERM"
        assert time.monotonic() - began < 20
        assert not page_answers(f"http://127.0.0.1:{port}/login/")
        # It ran on its own embedded PostgreSQL, and stopped it on the way out.
        pgdata = tmp_path / "var" / "postgres"
        assert (pgdata / "PG_VERSION").exists()
        assert "embedded PostgreSQL ready: database sys" in text
        assert not (pgdata / "postmaster.pid").exists()
    finally:
        # Whatever happened above, leave nothing of this test's bin/dev behind.
        for pid in session_members(dev.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if dev.poll() is None:
            dev.kill()
            dev.wait()
        subprocess.run([sys.executable, "-m", "campaign.embedded_db", "stop"], cwd=REPO,
                       env=env, capture_output=True, timeout=60)
