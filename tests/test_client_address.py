"""The recipient page's rate limits read the client address through the same helper as the
login throttle (campaign.clientip.client_ip, TRUSTED_PROXIES)."""

from urllib.parse import urlsplit

import pytest

from letters import sending
from letters.models import Letter
from tests.letters.conftest import add_finding, compiled_translations  # noqa: F401
from tests.letters.helpers import approved_batch

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.5"


@pytest.fixture
def retest_urls(campaign, bob, rita, settings):
    settings.RECIPIENT_RATE_LIMITS = {"retest_token": (100, 3600), "retest_ip": (1, 3600)}
    add_finding(campaign, email="noc@alice.example", ip="198.51.100.11")
    add_finding(campaign, email="noc@bob.example", ip="203.0.113.77")
    assert sending.send_batch(batch=approved_batch(campaign, bob, rita)).sent == 2
    return [urlsplit(letter.context["recipient_url"]).path + "retest/"
            for letter in Letter.objects.order_by("email")]


def test_behind_a_trusted_proxy_each_recipient_has_their_own_budget(client, settings,
                                                                    retest_urls):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    alice, bob = retest_urls
    assert client.post(alice, REMOTE_ADDR=PROXY,
                       HTTP_X_FORWARDED_FOR="198.51.100.20").status_code == 302
    # Another recipient through the same proxy is not held by the first one's budget…
    assert client.post(bob, REMOTE_ADDR=PROXY,
                       HTTP_X_FORWARDED_FOR="203.0.113.30").status_code == 302
    # …but the first one's next try from the same address is.
    assert client.post(bob, REMOTE_ADDR=PROXY,
                       HTTP_X_FORWARDED_FOR="198.51.100.20").status_code == 429


def test_an_untrusted_peer_cannot_refill_its_budget_with_x_forwarded_for(client, settings,
                                                                         retest_urls):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    alice, bob = retest_urls
    assert client.post(alice, REMOTE_ADDR="198.51.100.66",
                       HTTP_X_FORWARDED_FOR="192.0.2.1").status_code == 302
    assert client.post(bob, REMOTE_ADDR="198.51.100.66",
                       HTTP_X_FORWARDED_FOR=f"192.0.2.2, {PROXY}").status_code == 429


def test_without_trusted_proxies_the_proxy_is_the_address(client, settings, retest_urls):
    settings.TRUSTED_PROXIES = []
    alice, bob = retest_urls
    assert client.post(alice, REMOTE_ADDR=PROXY,
                       HTTP_X_FORWARDED_FOR="198.51.100.20").status_code == 302
    assert client.post(bob, REMOTE_ADDR=PROXY,
                       HTTP_X_FORWARDED_FOR="203.0.113.30").status_code == 429
