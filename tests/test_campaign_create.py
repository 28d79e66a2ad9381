"""The staff UI's "New campaign" page: the create_campaign command in a form."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from campaign.models import Agency, AuditEvent, Campaign
from campaign.services import create_campaign
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

A, B = "Agency A", "Agency B"


@pytest.fixture
def agencies(db):
    return Agency.objects.create(name=A, country="US"), Agency.objects.create(name=B)


def test_the_campaign_list_links_to_the_page_for_those_who_may_create(client, agencies):
    url = reverse("campaign_create")
    client.force_login(make_user("ann", "admin", A))
    assert url in client.get(reverse("campaign_list")).content.decode()
    client.force_login(make_user("al", "analyst", A))
    assert url not in client.get(reverse("campaign_list")).content.decode()
    assert client.get(url).status_code == 403
    assert client.post(url, {"slug": "x", "kinds": "relay"}).status_code == 403
    assert not Campaign.objects.exists()


def test_a_bound_admin_creates_a_campaign_led_by_its_own_agency(client, agencies):
    a, b = agencies
    ann = make_user("ann", "admin", A)
    client.force_login(ann)
    page = client.get(reverse("campaign_create")).content.decode()
    assert 'name="slug"' in page and 'name="agency"' not in page and 'name="partners"' not in page
    response = client.post(reverse("campaign_create"), {
        "slug": "oss-2027", "name": "Operation 2027", "kinds": "relay",
        "agency": b.pk, "partners": [b.pk]})  # not on its form: ignored
    assert response.status_code == 302
    assert response["Location"] == reverse("campaign_detail", args=["oss-2027"])
    campaign = Campaign.objects.get(slug="oss-2027")
    assert (campaign.agency, campaign.name, campaign.kind_names, campaign.created_by) == (
        a, "Operation 2027", ["relay"], ann)
    assert not campaign.partners.exists()
    event = AuditEvent.objects.get(action="campaign.create")
    assert (event.actor, event.campaign_id, event.data) == (
        ann, campaign.pk, {"slug": "oss-2027", "kinds": ["relay"]})
    # Its staff see it at once; the other agency's do not.
    client.force_login(make_user("bea", "staff", B))
    assert client.get(reverse("campaign_detail", args=["oss-2027"])).status_code == 404


def test_the_form_refuses_what_the_command_refuses(client, agencies):
    create_campaign(slug="taken", agency_name=A)
    client.force_login(make_user("ann", "admin", A))
    url = reverse("campaign_create")
    response = client.post(url, {"slug": "taken", "kinds": "relay,proxy"})
    assert response.status_code == 400
    assert "a campaign with slug &#x27;taken&#x27; already exists" in response.content.decode()
    for bad in ("not a slug!", "", "x" * 81):
        assert client.post(url, {"slug": bad, "kinds": "relay"}).status_code == 400, bad
    assert client.post(url, {"slug": "ok", "kinds": "relay,smtp"}).status_code == 400
    assert list(Campaign.objects.values_list("slug", flat=True)) == ["taken"]


def test_staff_may_create_too_as_their_role_says(client, agencies):
    client.force_login(make_user("bob", "staff", B))
    response = client.post(reverse("campaign_create"), {"slug": "fr-2027", "kinds": "proxy"})
    assert response.status_code == 302
    assert Campaign.objects.get(slug="fr-2027").agency.name == B


def test_a_user_bound_to_no_agency_picks_the_lead_and_partners(client, agencies):
    a, b = agencies
    root = get_user_model().objects.create_superuser("root", "root@example.org", "x-9-long-pw")
    client.force_login(root)
    url = reverse("campaign_create")
    assert client.post(url, {"slug": "joint", "kinds": "relay,proxy", "agency": b.pk,
                             "partners": [b.pk]}).status_code == 400
    response = client.post(url, {"slug": "joint", "kinds": "relay,proxy", "agency": b.pk,
                                 "partners": [a.pk]})
    assert response.status_code == 302
    campaign = Campaign.objects.get(slug="joint")
    assert campaign.agency == b and list(campaign.partners.all()) == [a]
    assert AuditEvent.objects.get(action="campaign.partners").data == {"partners": [A]}
