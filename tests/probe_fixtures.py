"""Fixtures for the probe pages' tests: fake SMTP relays on 127.0.0.x and a loopback guard.

Import the fixtures into a test module (`from tests.probe_fixtures import ...`); they reuse the
probes suite's fakes, which run on their own event loop as real servers would.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from tests.probes import fakes


@pytest.fixture(scope="session")
def fake_loop():
    thread = fakes.LoopThread()
    yield thread
    thread.stop()


@pytest.fixture
def loopback_only(monkeypatch):
    """Every connection a probe opens, and the guarantee that each one stays on loopback."""
    attempts: list[tuple[str, int]] = []
    real = asyncio.open_connection

    async def guarded(host=None, port=None, **kwargs):
        attempts.append((host, port))
        assert ipaddress.ip_address(host).is_loopback, f"test tried to reach {host}"
        return await real(host, port, **kwargs)

    monkeypatch.setattr(asyncio, "open_connection", guarded)
    return attempts


@pytest.fixture
def lab_settings(settings, loopback_only):
    """Loopback allowed as a probe target (a lab), short timeouts, an agency canary domain."""
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.PROBE_TIMEOUT = 1.0
    settings.PROBE_CANARY_DOMAIN = "canary.test"
    settings.PROBE_CANARY_ADDR = ""
    return settings


@pytest.fixture
def smtp_fake(fake_loop, lab_settings):
    """Start a fake SMTP server: `smtp_fake("127.0.0.41", open_relay=True)`."""
    started: list[fakes.Fake] = []

    def start(host: str, *, open_relay: bool) -> fakes.Fake:
        policy = fakes.relay_everything if open_relay else fakes.relay_nothing
        server = fake_loop.run(fakes.Fake(fakes.smtp_server, host=host,
                                          options={"rcpt": policy}).start())
        started.append(server)
        return server

    yield start
    for server in started:
        fake_loop.run(server.close())


def closed_port(host: str) -> int:
    """A port on `host` that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
