import asyncio
import ipaddress

import pytest

from tests.probes.fakes import Fake, LoopThread

CANARY_HOST = "127.0.0.9"  # not 127.0.0.1: a loopback-only postfix counts that one as "local"


@pytest.fixture(scope="session")
def loop():
    thread = LoopThread()
    yield thread
    thread.stop()


@pytest.fixture(autouse=True)
def connections(monkeypatch):
    """Every outgoing connection in these tests, and the guarantee that all are on loopback."""
    attempts: list[tuple[str, int]] = []
    real = asyncio.open_connection

    async def guarded(host=None, port=None, **kwargs):
        attempts.append((host, port))
        assert ipaddress.ip_address(host).is_loopback, f"test tried to reach {host}"
        return await real(host, port, **kwargs)

    monkeypatch.setattr(asyncio, "open_connection", guarded)
    return attempts


@pytest.fixture(scope="session")
def canary(loop, django_db_blocker):
    from probes.verification.canary import CanaryServer
    from probes.verification.services import canary_key

    server = loop.run(CanaryServer(canary_key(), CANARY_HOST, 0).start())
    yield server
    loop.run(server.close())


@pytest.fixture
def probe_settings(settings, canary):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    settings.PROBE_TIMEOUT = 1.0
    settings.PROBE_CANARY_DOMAIN = "canary.test"
    settings.PROBE_CANARY_ADDR = f"{CANARY_HOST}:{canary.port}"
    return settings


@pytest.fixture
def config(probe_settings):
    from probes.verification.services import probe_config

    return probe_config()


@pytest.fixture
def fake(loop):
    started: list[Fake] = []

    def start(handler, host="127.0.0.1", **options) -> Fake:
        server = loop.run(Fake(handler, host=host, options=options).start())
        started.append(server)
        return server

    yield start
    for server in started:
        loop.run(server.close())


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def real_servers():
    """postfix (open + closed relay), tinyproxy and dante (open + restricted) on 127.0.1.x."""
    import shutil
    import tempfile
    from pathlib import Path
    from types import SimpleNamespace

    from tests.probes import servers

    missing = servers.have_binaries()
    assert not missing, f"run .ci/install-system-packages first; missing {missing}"
    # Not pytest's tmp_path: its parents are 0700, and postfix's daemons (user postfix) must
    # traverse into their data directory.
    root = Path(tempfile.mkdtemp(prefix="sys-probe-servers-"))
    root.chmod(0o755)
    started = []

    def listener(host):
        return servers.Listener(host, servers.free_port(host))

    try:
        postfix = servers.Postfix(root / "postfix")
        postfix.start()
        started.append(postfix)
        tiny_open = servers.Tinyproxy(root / "tinyproxy", "open", listener("127.0.1.10"),
                                      allow="127.0.0.0/8")
        tiny_closed = servers.Tinyproxy(root / "tinyproxy", "restricted",
                                        listener("127.0.1.11"), allow="10.255.255.254")
        dante_open = servers.Dante(root / "dante", "open", listener("127.0.1.12"), open=True)
        dante_closed = servers.Dante(root / "dante", "restricted", listener("127.0.1.13"),
                                     open=False)
        for server in (tiny_open, tiny_closed, dante_open, dante_closed):
            server.start()
            started.append(server)
        yield SimpleNamespace(postfix=postfix, tiny_open=tiny_open, tiny_closed=tiny_closed,
                              dante_open=dante_open, dante_closed=dante_closed)
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
