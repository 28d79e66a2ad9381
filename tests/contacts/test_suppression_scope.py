"""The do-not-contact list across agencies: an entry binds every agency's letters, so every
agency sees it with who made it (another agency's reason hidden), the host it stopped names it,
and only the agency that made it (or an admin bound to no agency) takes it off again, audited,
with the hosts it stopped back in the letter queue."""

import io
import json
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from campaign import states
from campaign.models import AuditEvent, Host
from probes.contacts.models import Contact, Suppression
from probes.contacts.suppression import suppress
from tests.conftest import BNETZA, FTC, make_user, two_agency_campaigns
from tests.letters.conftest import add_finding

pytestmark = pytest.mark.django_db

A, B = FTC, BNETZA
SHARED = "abuse@big-isp.example"


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def two(db):
    """Two agencies with a campaign each; both have a host whose contact is the same ISP."""
    a_campaign, b_campaign = two_agency_campaigns()
    return SimpleNamespace(
        a_campaign=a_campaign, b_campaign=b_campaign,
        a_host=add_finding(a_campaign, email=SHARED, country="US"),
        b_host=add_finding(b_campaign, email=SHARED, country="DE", language="de"),
        a=make_user("amy", "staff", A), b=make_user("bea", "staff", B),
        a_admin=make_user("ada", "admin", A), root=make_user("root", "admin"),
        loose=make_user("lou", "staff"),  # staff bound to no agency
    )


def page(client, user) -> str:
    client.force_login(user)
    response = client.get(reverse("suppression_list"))
    assert response.status_code == 200
    return response.content.decode()


def remove(client, user, value, *, reason="asked to be written to again", confirm=True):
    client.force_login(user)
    data = {"remove": "1", "value": value, "reason": reason}
    if confirm:
        data["confirm"] = "on"
    return client.post(reverse("suppression_list"), data)


def test_an_entry_of_agency_a_is_listed_for_agency_b_with_who_made_it(client, two):
    suppress(value=SHARED, actor=two.a, reason="FTC letter 12 bounced: mailbox full")
    # Do-not-contact is installation-wide: B's host left the queue too.
    assert Host.objects.get(pk=two.b_host.pk).state == states.NO_CONTACT
    seen_by_b = page(client, two.b)
    assert SHARED in seen_by_b
    assert A in seen_by_b and "by amy" in seen_by_b  # who made it: agency and user
    assert "FTC letter 12" not in seen_by_b  # its reason names A's letters
    assert 'data-field="reason-hidden"' in seen_by_b
    assert "FTC letter 12 bounced" in page(client, two.a)
    assert "FTC letter 12 bounced" in page(client, two.root)


def test_the_stopped_host_names_the_entry_on_its_page_and_in_show_host(client, two):
    suppress(value="big-isp.example", actor=two.a, reason="the ISP asked us to stop")
    client.force_login(two.b)
    response = client.get(reverse("host_detail", args=[two.b_campaign.slug, two.b_host.ip]))
    body = response.content.decode()
    assert 'data-field="contact-suppression"' in body
    card = body[body.index('data-field="contact-suppression"'):][:600]
    assert "big-isp.example" in card and A in card and "(amy)" in card
    shown = json.loads(run("show_host", two.b_campaign.slug, two.b_host.ip, "--json"))
    by = shown["contact"]["suppressed_by"]
    assert by["value"] == "big-isp.example" and by["kind"] == "domain"
    assert by["agency"] == A and by["by"] == "amy" and by["created_at"]
    other = add_finding(two.b_campaign, email="abuse@small-isp.example", country="DE")
    assert json.loads(run("show_host", two.b_campaign.slug, other.ip, "--json")
                      )["contact"]["suppressed_by"] is None


def test_only_the_agency_that_made_an_entry_removes_it_and_its_hosts_come_back(client, two):
    entry = suppress(value=SHARED, actor=two.a, reason="asked by phone")
    assert 'name="remove"' not in page(client, two.b)  # no button for B ...
    assert remove(client, two.b, SHARED).status_code == 403  # ... and no way around it
    assert remove(client, two.loose, SHARED).status_code == 403
    assert Suppression.objects.filter(value=SHARED).exists()
    assert 'name="remove"' in page(client, two.a)
    # Without the confirmation ticked nothing happens.
    response = remove(client, two.a, SHARED, confirm=False)
    assert response.status_code == 302 and Suppression.objects.filter(value=SHARED).exists()
    response = remove(client, two.a, SHARED, reason="the ISP wants the letters after all")
    assert response.status_code == 302
    assert not Suppression.objects.filter(value=SHARED).exists()
    event = AuditEvent.objects.get(action="contact.unsuppress")
    assert event.actor == two.a and event.object_id == str(entry.pk)
    assert event.data["value"] == SHARED and event.data["reason"] == "asked by phone"
    assert event.data["agency"] == A and event.data["created_by"] == "amy"
    assert event.data["removal_reason"] == "the ISP wants the letters after all"
    assert event.data["hosts"] == 2 and event.data["contacts"] == 2
    for host in (two.a_host, two.b_host):  # both agencies' hosts may be written to again
        assert Host.objects.get(pk=host.pk).state == states.CONTACT_RESOLVED
        assert Contact.objects.get(host=host).status == Contact.RESOLVED
    moves = AuditEvent.objects.filter(action="host.transition_bulk",
                                      data__to=states.CONTACT_RESOLVED)
    assert {e.campaign_id for e in moves} == {two.a_campaign.pk, two.b_campaign.pk}


def test_a_contact_another_entry_still_covers_stays_suppressed(two):
    suppress(value=SHARED, actor=two.a, reason="asked by phone")
    suppress(value="big-isp.example", actor=two.b, reason="the whole ISP said stop")
    out = run("suppress", "--remove", SHARED, "--by", "amy", "--reason", "undo")
    assert out == f"removed={SHARED} kind=address contacts=0 hosts=0"
    assert Host.objects.get(pk=two.b_host.pk).state == states.NO_CONTACT
    assert Contact.objects.get(host=two.b_host).status == Contact.SUPPRESSED


def test_the_command_removes_for_the_maker_or_an_unbound_admin_only(two):
    assert run("suppress", SHARED, "--by", "amy", "--reason", "stop") == (
        f"suppressed={SHARED} kind=address")  # the adding line is unchanged
    with pytest.raises(CommandError, match="only Federal Trade Commission may"):
        run("suppress", "--remove", SHARED, "--by", "bea", "--reason", "not ours")
    with pytest.raises(CommandError, match="say why"):
        run("suppress", "--remove", SHARED, "--by", "root", "--reason", " ")
    assert run("suppress", "--remove", SHARED, "--by", "root", "--reason", "ISP asked") == (
        f"removed={SHARED} kind=address contacts=2 hosts=2")
    with pytest.raises(CommandError, match="is not on the do-not-contact list"):
        run("suppress", "--remove", SHARED, "--by", "root", "--reason", "again")
    # An agency's admin removes its own agency's entries, and an entry of no agency is for
    # the admins bound to none: staff bound to none are not admins (`None == None` once let
    # them remove every installation-wide entry).
    suppress(value="noc@bounced.example", actor=None, reason="bounced", source="bounce")
    with pytest.raises(CommandError, match="bound to no agency"):
        run("suppress", "--remove", "noc@bounced.example", "--by", "ada", "--reason", "x")
    with pytest.raises(CommandError, match="bound to no agency"):
        run("suppress", "--remove", "noc@bounced.example", "--by", "lou", "--reason", "x")
    assert run("suppress", "--remove", "noc@bounced.example", "--by", "root",
               "--reason", "the mailbox works again").startswith("removed=noc@bounced.example")


def test_an_entry_two_agencies_asked_for_is_not_undone_by_the_first(client, two):
    """B asks to stop an address A listed first: one entry (A's), but A alone may not take
    B's stop away; an admin bound to no agency still can."""
    suppress(value=SHARED, actor=two.a, reason="asked by phone")
    client.force_login(two.b)
    response = client.post(reverse("suppression_list"),
                           {"value": SHARED, "reason": "their reply to our letter"})
    assert response.status_code == 302
    entry = Suppression.objects.get(value=SHARED)
    assert entry.agency.name == A  # still one row
    request = AuditEvent.objects.get(action="contact.suppress", actor=two.b)
    assert request.data["already_listed"] is True
    assert 'name="remove"' not in page(client, two.a)
    assert remove(client, two.a, SHARED).status_code == 403
    with pytest.raises(CommandError, match="several agencies asked for it"):
        run("suppress", "--remove", SHARED, "--by", "amy", "--reason", "undo")
    assert Host.objects.get(pk=two.b_host.pk).state == states.NO_CONTACT
    assert run("suppress", "--remove", SHARED, "--by", "root", "--reason", "both agreed") == (
        f"removed={SHARED} kind=address contacts=2 hosts=2")


def test_asking_again_for_ones_own_entry_records_nothing_new(two):
    suppress(value=SHARED, actor=two.a, reason="asked by phone")
    suppress(value=SHARED, actor=two.a_admin, reason="asked again")
    assert AuditEvent.objects.filter(action="contact.suppress").count() == 1
    assert run("suppress", "--remove", SHARED, "--by", "amy", "--reason", "undo").startswith(
        "removed=")
