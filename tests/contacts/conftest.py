import json

import pytest

from tests.contacts.fakes import FakeRdap, FakeWhois


@pytest.fixture
def rdap_fake():
    fake = FakeRdap().load_fixtures().start()
    yield fake
    fake.stop()


@pytest.fixture
def whois_fake():
    fake = FakeWhois().load_fixtures().start()
    yield fake
    fake.stop()


@pytest.fixture
def loopback(settings, tmp_path):
    """Only loopback is reachable, and quickly given up on."""
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
    settings.PROBE_TIMEOUT = 1.0
    settings.CONTACT_LOOKUPS_PER_SECOND = 0
    settings.RDAP_BOOTSTRAP_DIR = str(tmp_path / "rdap")
    return settings


@pytest.fixture
def bootstrap(rdap_fake):
    from probes.contacts.rdap import Bootstrap

    return Bootstrap(
        json.loads(rdap_fake.routes[f"/bootstrap/{name}"].body)
        for name in ("ipv4.json", "ipv6.json")
    )


@pytest.fixture
def registries(db, loopback, rdap_fake, whois_fake):
    """Settings pointing at the fakes, with the fake's bootstrap fetched and stored."""
    from probes.contacts import bootstrap

    loopback.RDAP_BOOTSTRAP_URL = rdap_fake.bootstrap_url
    loopback.WHOIS_IANA_SERVER = whois_fake.addr("iana")
    bootstrap.refresh_bootstrap()
    rdap_fake.requests.clear()
    return rdap_fake, whois_fake
