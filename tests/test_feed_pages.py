"""The feed subscriptions pages: subscribe, see each feed's state and history, pause, fetch."""

from __future__ import annotations

import pytest
from django.urls import reverse

from campaign.models import FeedFetch, FeedSubscription
from tests.conftest import make_user
from tests.test_subscriptions import ConditionalServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def feed_server(settings):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.5/32"]
    server = ConditionalServer("127.0.0.5")
    yield server
    server.close()


def test_an_analyst_subscribes_from_the_page_and_fetches_now(
        client, campaign, alice, feed_server, django_capture_on_commit_callbacks):
    client.force_login(alice)
    page = client.get(reverse("feed_list", args=[campaign.slug]))
    assert page.status_code == 200
    assert b"No feed subscriptions yet." in page.content
    assert b"auth_secret" not in page.content  # an analyst may not attach secrets

    response = client.post(reverse("feed_list", args=[campaign.slug]), {
        "url": feed_server.url, "format": "auto", "kind": "relay", "every": "6h", "cron": ""})
    assert response.status_code == 302
    subscription = FeedSubscription.objects.get()
    assert subscription.created_by == alice and subscription.interval_seconds == 21600

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("feed_action", args=[campaign.slug, subscription.pk]),
                               {"action": "fetch"})
    assert response.status_code == 302
    fetch = FeedFetch.objects.get()
    assert fetch.outcome == "fetched"
    detail = client.get(reverse("feed_detail", args=[campaign.slug, subscription.pk]))
    text = detail.content.decode()
    assert "lines=192 added=146 known=0 rejected=13" in text
    assert "every 6h" in text


def test_a_schedule_is_required_and_one_only(client, campaign, alice, feed_server):
    client.force_login(alice)
    for schedule in ({"every": "", "cron": ""}, {"every": "1h", "cron": "0 * * * *"}):
        response = client.post(reverse("feed_list", args=[campaign.slug]), {
            "url": feed_server.url, "format": "auto", "kind": "relay", **schedule})
        assert response.status_code == 400
        assert b"Give one schedule" in response.content
    response = client.post(reverse("feed_list", args=[campaign.slug]), {
        "url": feed_server.url, "format": "auto", "kind": "relay", "every": "2s", "cron": ""})
    assert response.status_code == 400 and b"too often" in response.content
    assert not FeedSubscription.objects.exists()


def test_a_failing_feed_is_red_on_the_campaign_page_and_paused_ones_are_not(
        client, campaign, alice, settings):
    settings.FEED_FAILURES_ALERT = 3
    failing = FeedSubscription.objects.create(
        campaign=campaign, url="https://feeds.example/broken.txt", interval_seconds=3600,
        failures=3, last_error="https://feeds.example/broken.txt answered HTTP 503")
    FeedSubscription.objects.create(campaign=campaign, url="https://feeds.example/ok.txt",
                                    interval_seconds=3600, failures=1)
    client.force_login(alice)
    page = client.get(reverse("campaign_detail", args=[campaign.slug])).content.decode()
    assert f'data-feed="{failing.pk}" class="feed-failing"' in page
    assert 'data-work="feed"' in page and "failing: 3 fetches in a row" in page
    assert "Last fetch failed, retrying" in page  # one failure: amber, not red

    client.post(reverse("feed_action", args=[campaign.slug, failing.pk]), {"action": "pause"})
    page = client.get(reverse("campaign_detail", args=[campaign.slug])).content.decode()
    assert 'data-work="feed"' not in page
    assert FeedSubscription.objects.get(pk=failing.pk).active is False


def test_a_reviewer_sees_the_feeds_but_cannot_subscribe(client, campaign):
    reviewer = make_user("rev", "reviewer")
    client.force_login(reviewer)
    page = client.get(reverse("feed_list", args=[campaign.slug]))
    assert page.status_code == 200 and b"Subscribe to a feed" not in page.content
    refused = client.post(reverse("feed_list", args=[campaign.slug]), {
        "url": "https://feeds.example/x", "every": "1h"})
    assert refused.status_code == 403
    assert not FeedSubscription.objects.exists()
