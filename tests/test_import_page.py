"""The import page offers only kinds that can work, and speaks its own language (issue 14, 7).

A campaign with relays and proxies cannot guess what a plain IP list holds: the page must ask,
not offer "campaign default" and then fail with the command line's `--kind` advice.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import translation

from campaign import kinds
from campaign.forms import ImportForm
from campaign.models import FeedImport
from campaign.services import create_campaign

pytestmark = pytest.mark.django_db


def kind_options(html: str) -> list[tuple[str, str]]:
    select = html.split('name="kind"', 1)[1].split("</select>", 1)[0]
    return re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select)


@pytest.fixture
def relays(agency):
    return create_campaign(slug="relays", agency_name=agency.name, kinds="relay")


def test_a_two_kind_campaign_offers_no_default_and_requires_the_kind(client, alice, campaign):
    client.force_login(alice)
    page = client.get(reverse("import_create", args=[campaign.slug])).content.decode()
    assert kind_options(page) == [("", "Choose…"), ("relay", "Open mail relay"),
                                  ("proxy", "Open proxy")]
    assert "Campaign default" not in page
    assert re.search(r'<select name="kind"[^>]*required', page)


def test_a_two_kind_campaign_refuses_a_missing_kind_in_the_pages_words(
    client, alice, campaign, feeds_dir
):
    client.force_login(alice)
    with (feeds_dir / "plain-ips.txt").open("rb") as fh:
        response = client.post(reverse("import_create", args=[campaign.slug]),
                               {"upload": fh, "format": "auto", "kind": ""})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Say whether this feed lists open mail relays or open proxies." in body
    assert "--kind" not in body
    assert not FeedImport.objects.exists()
    # The form stays filled in for a retry: choose the kind and send it again.
    with (feeds_dir / "plain-ips.txt").open("rb") as fh:
        retry = client.post(reverse("import_create", args=[campaign.slug]),
                            {"upload": fh, "format": "auto", "kind": "relay"})
    assert retry.status_code == 302
    assert FeedImport.objects.get().kind == kinds.RELAY


def test_a_one_kind_campaign_offers_its_default_and_not_the_other_kind(
    client, alice, relays, feeds_dir
):
    client.force_login(alice)
    page = client.get(reverse("import_create", args=[relays.slug])).content.decode()
    assert kind_options(page) == [("", "Campaign default (Open mail relay)"),
                                  ("relay", "Open mail relay")]
    with (feeds_dir / "plain-ips.txt").open("rb") as fh:
        response = client.post(reverse("import_create", args=[relays.slug]),
                               {"upload": fh, "format": "auto", "kind": ""})
    assert response.status_code == 302
    assert FeedImport.objects.get().kind == kinds.RELAY


def test_a_forged_kind_the_campaign_does_not_target_is_a_form_error(
    client, alice, relays, feeds_dir
):
    client.force_login(alice)
    with (feeds_dir / "plain-ips.txt").open("rb") as fh:
        response = client.post(reverse("import_create", args=[relays.slug]),
                               {"upload": fh, "format": "auto", "kind": "proxy"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not FeedImport.objects.exists()


def test_the_form_errors_go_through_gettext(campaign, monkeypatch):
    """The messages are looked up in the active language's catalog, not fixed CLI text."""
    from django.utils.translation import trans_real

    looked_up: list[str] = []

    def spy(message: str) -> str:
        looked_up.append(message)
        return trans_real.gettext(message)

    # django.utils.translation.gettext (and the lazy strings) call through _trans.
    monkeypatch.setattr(translation._trans, "gettext", spy)
    with translation.override("de"):
        form = ImportForm({"url": "https://lists.example.org/x.txt", "format": "auto",
                           "kind": ""}, campaign=campaign)
        assert not form.is_valid()
        assert form.errors["kind"] == [
            "Say whether this feed lists open mail relays or open proxies."]
    assert "Say whether this feed lists open mail relays or open proxies." in looked_up


def test_the_cli_keeps_its_message_and_the_page_shows_its_own(client, alice, campaign,
                                                              feeds_dir):
    with pytest.raises(CommandError, match="--kind relay or --kind proxy"):
        call_command("import_feed", "--campaign", campaign.slug, str(feeds_dir / "plain-ips.txt"),
                     stdout=io.StringIO())
    feed_import = FeedImport.objects.get()
    assert "--kind relay or --kind proxy" in feed_import.error  # the record keeps the CLI's
    client.force_login(alice)
    page = client.get(reverse("import_detail", args=[campaign.slug, feed_import.pk]))
    body = page.content.decode()
    assert "--kind" not in body
    assert "Import it again and choose one." in body
    assert f'href="{reverse("import_create", args=[campaign.slug])}"' in body  # a retry
    status = client.get(reverse("import_status", args=[campaign.slug, feed_import.pk])).json()
    assert "--kind" not in status["error"]
