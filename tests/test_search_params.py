"""Every staff page with a search box (`q`) answers hostile input cleanly: PostgreSQL refuses
NUL characters, so a `q=%00` passed through to a query was a 500."""

import pytest
from django.urls import reverse

from campaign.services import create_campaign
from probes.contacts.suppression import suppress
from tests.conftest import make_user
from tests.letters.conftest import add_finding

pytestmark = pytest.mark.django_db

NO_ARGS = ("campaign_list", "suppression_list", "review_queue", "agency_list")
BY_SLUG = ("campaign_detail", "host_list", "letter_list", "import_create", "probe_run_start",
           "contact_run_start", "batch_create")
HOSTILE = ("\x00", "abc\x00def", "\x00" * 300, "%00", "\x1b[31m", "' OR 1=1 --")


@pytest.fixture
def admin_client(client, agency):
    campaign = create_campaign(slug="oss-2026", agency_name=agency.name)
    add_finding(campaign, email="abuse@isp.example")
    admin = make_user("ada", "admin", agency.name)
    suppress(value="noc@isp.example", actor=admin, reason="asked us to stop")
    client.force_login(admin)
    return client, campaign


def search_pages(client, campaign) -> set[str]:
    """The staff pages that show a search box named q (found by looking, not listed)."""
    found = set()
    for name in NO_ARGS + BY_SLUG:
        path = reverse(name, args=(campaign.slug,) if name in BY_SLUG else ())
        response = client.get(path)
        assert response.status_code == 200, name
        if 'name="q"' in response.content.decode():
            found.add(path)
    return found


def test_every_page_with_a_search_box_answers_nul_and_control_characters(admin_client):
    client, campaign = admin_client
    pages = search_pages(client, campaign)
    assert reverse("suppression_list") in pages and reverse("host_list", args=[campaign.slug])
    for path in pages:
        for text in HOSTILE:
            response = client.get(path, {"q": text})
            assert response.status_code in (200, 400), (path, repr(text), response.status_code)
        # The raw URL form too, as a browser or a scanner sends it.
        assert client.get(path + "?q=%00").status_code in (200, 400), path


def test_a_nul_in_the_suppression_search_is_ignored_not_searched_for(admin_client):
    client, _campaign = admin_client
    response = client.get(reverse("suppression_list") + "?q=noc%00@isp")
    assert response.status_code == 200
    assert "noc@isp.example" in response.content.decode()
