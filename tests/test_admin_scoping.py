"""The Django admin sees and changes what the staff pages allow, and audits every write.

Two agencies, A and B, each leading a campaign with one row of every scoped model. A's admin
must find nothing of B's in any registered admin (lists, change pages, form choices, posts);
global tables are for users bound to no agency; a superuser bound to none sees everything.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import InternalError, connection
from django.db.models import ForeignKey, ManyToManyField, OneToOneField
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from campaign.admin import ScopedAdmin, UnboundOnlyAdmin
from campaign.models import (
    Agency,
    AuditEvent,
    Campaign,
    Feed,
    FeedImport,
    Host,
    ImportLineIssue,
    Sighting,
    StaffProfile,
)
from campaign.services import create_campaign
from letters.languages import normalize
from letters.models import (
    Batch,
    ContactDraw,
    ContactPreference,
    ControlHost,
    InboundMessage,
    Letter,
    LetterEvent,
    LetterSettings,
    LetterTemplate,
    Retest,
)
from probes.contacts.models import Contact, ContactOverride, ContactRun, NetworkRecord, Suppression
from probes.verification.models import ProbeResult, ProbeRun
from tests.conftest import make_user
from tests.letters.conftest import add_finding

pytestmark = pytest.mark.django_db

A, B = "Agency A", "Agency B"
User = get_user_model()


def fill(campaign: Campaign, agency: Agency, user) -> dict:
    """One row of every campaign-scoped model, for one agency's campaign."""
    slug = campaign.slug
    host = add_finding(campaign, email=f"abuse@{slug}.example")
    held_host = add_finding(campaign, email=f"held@{slug}.example")
    feed_import = FeedImport.objects.create(
        campaign=campaign, feed=Feed.objects.create(name=f"feed-{slug}"), source="f.txt",
        kind=1, status=FeedImport.DONE)
    batch = Batch.objects.create(campaign=campaign, agency=agency, created_by=user)
    letter = Letter.objects.create(batch=batch, campaign=campaign, email=f"abuse@{slug}.example",
                                   subject="s", body_text="t", body_html="<p>t</p>")
    draw = ContactDraw.objects.create(campaign=campaign, email=f"held@{slug}.example",
                                      held_out=True, bucket=0.01, percent=10, reason="drawn")
    return {
        Agency: agency,
        Campaign: campaign,
        StaffProfile: user.staff_profile,
        FeedImport: feed_import,
        ImportLineIssue: ImportLineIssue.objects.create(
            feed_import=feed_import, line_no=1, content="x", reason="invalid", message="m"),
        Host: host,
        Sighting: Sighting.objects.create(host=host, feed_import=feed_import, line_no=2,
                                          seen_at=timezone.now(), kind=1),
        ProbeRun: ProbeRun.objects.get(campaign=campaign),
        ProbeResult: ProbeResult.objects.filter(host=host).get(),
        Contact: host.contact,
        ContactOverride: ContactOverride.objects.create(
            host=host, email=f"noc@{slug}.example", created_by=user, reason="phoned"),
        ContactRun: ContactRun.objects.create(campaign=campaign, status=ContactRun.DONE),
        Suppression: Suppression.objects.create(value=f"no@{slug}.example", kind="address",
                                                reason=f"asked {slug}", agency=agency),
        Batch: batch,
        Letter: letter,
        LetterEvent: LetterEvent.objects.create(letter=letter, esp="test",
                                                event_type="delivered"),
        InboundMessage: InboundMessage.objects.create(letter=letter, esp="test",
                                                      from_email=f"abuse@{slug}.example"),
        Retest: Retest.objects.create(campaign=campaign, host=host, outcome=Retest.STILL_OPEN),
        ContactDraw: draw,
        ControlHost: ControlHost.objects.create(campaign=campaign, host=held_host, draw=draw),
        ContactPreference: ContactPreference.objects.create(contact=host.contact,
                                                            language="fr"),
        LetterSettings: LetterSettings.objects.create(campaign=campaign),
    }


@pytest.fixture
def world(db):
    a, b = Agency.objects.create(name=A, country="US"), Agency.objects.create(name=B, country="FR")
    a_admin, b_admin = make_user("a-admin", "admin", A), make_user("b-admin", "admin", B)
    root = User.objects.create_superuser("root", "root@example.org", "x-9-long-pw")
    rows = {
        A: fill(create_campaign(slug="a-2026", agency_name=A), a, a_admin),
        B: fill(create_campaign(slug="b-2026", agency_name=B), b, b_admin),
    }
    # Global rows, for the unbound-only admins.
    NetworkRecord.objects.create(network="192.0.2.0/24",
                                 start_address="192.0.2.0", end_address="192.0.2.255",
                                 expires_at=timezone.now() + timedelta(days=1))
    LetterTemplate.objects.create(name="first_notice.subject.txt", source="Hello")
    return a, b, a_admin, b_admin, root, rows


def request_for(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_registered_admin_is_scoped_or_for_unbound_users_only(world):
    """A new admin class that neither scopes its rows nor keeps to unbound users fails here,
    and so does a scoped one this test gives no row of agency B to look for."""
    _, _, a_admin, _, root, rows = world
    for model, model_admin in admin.site._registry.items():
        assert isinstance(model_admin, ScopedAdmin | UnboundOnlyAdmin), model
        seen = model_admin.get_queryset(request_for(a_admin))
        if isinstance(model_admin, UnboundOnlyAdmin):
            assert not seen.exists(), model
            assert not model_admin.has_view_permission(request_for(a_admin)), model
            assert not model_admin.has_module_permission(request_for(a_admin)), model
            assert model_admin.has_view_permission(request_for(root)), model
            continue
        assert model in rows[B], f"give agency B a {model.__name__} in fill()"
        assert not seen.filter(pk=rows[B][model].pk).exists(), model
        assert seen.filter(pk=rows[A][model].pk).exists(), model
        everything = model_admin.get_queryset(request_for(root))
        assert everything.filter(pk=rows[B][model].pk).exists(), model


def test_a_bound_admin_lists_and_opens_only_its_own_agencys_rows(client, world):
    _, _, a_admin, _, _, rows = world
    client.force_login(a_admin)
    for model, model_admin in admin.site._registry.items():
        changelist = client.get(admin_url(model, "changelist"))
        if isinstance(model_admin, UnboundOnlyAdmin):
            assert changelist.status_code == 403, model
            continue
        assert changelist.status_code == 200, model
        mine, theirs = rows[A][model], rows[B][model]
        html = changelist.content.decode()
        assert admin_url(model, "change", theirs.pk) not in html, model
        assert admin_url(model, "change", mine.pk) in html, model
        assert client.get(admin_url(model, "change", theirs.pk)).status_code == 404, model
        assert client.get(admin_url(model, "change", mine.pk)).status_code == 200, model
        assert client.get(admin_url(model, "delete", theirs.pk)).status_code == 404, model
        assert client.get(admin_url(model, "history", theirs.pk)).status_code == 404, model
        assert client.get(admin_url(model, "add")).status_code == 403, model
    index = client.get(reverse("admin:index")).content.decode()
    assert B not in index and "b-2026" not in index


def test_the_agency_filter_names_no_other_agency(client, world):
    _, _, a_admin, _, _, _ = world
    client.force_login(a_admin)
    page = client.get(admin_url(Campaign, "changelist")).content.decode()
    assert A in page and B not in page


def test_a_bound_admin_cannot_post_changes_to_another_agencys_campaign(client, world):
    a, b, a_admin, _, _, rows = world
    client.force_login(a_admin)
    theirs = rows[B][Campaign]
    response = client.post(admin_url(Campaign, "change", theirs.pk), {
        "slug": theirs.slug, "name": "taken", "agency": a.pk, "partners": [a.pk],
        "status": "closed", "kinds": 3, "reprobe_interval_days": 7, "followup_delay_days": 30,
        "holdout_percent": 0, "created_at_0": "2026-01-01", "created_at_1": "00:00:00"})
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert (theirs.name, theirs.agency_id, theirs.status) == ("b-2026", b.pk, "active")
    assert not theirs.partners.exists()
    # Bulk actions only ever see the user's own rows: B's id in the selection is ignored.
    response = client.post(admin_url(Campaign, "changelist"), {
        "action": "delete_selected", "_selected_action": [theirs.pk], "post": "yes"})
    assert Campaign.objects.filter(pk=theirs.pk).exists()


def test_a_bound_admin_changes_its_campaign_but_never_its_lead_or_partners(client, world):
    a, b, a_admin, _, _, rows = world
    client.force_login(a_admin)
    mine = rows[A][Campaign]
    page = client.get(admin_url(Campaign, "change", mine.pk)).content.decode()
    assert 'name="agency"' not in page and 'name="partners"' not in page  # read-only
    response = client.post(admin_url(Campaign, "change", mine.pk), {
        "name": "Operation A", "status": "paused", "reprobe_interval_days": 7,
        "followup_delay_days": 30, "holdout_percent": 0, "holdout_seed": "",
        # Not on the form: a crafted post of these is ignored.
        "agency": b.pk, "partners": [b.pk], "slug": "renamed"})
    assert response.status_code == 302, response.content.decode()[:2000]
    mine.refresh_from_db()
    assert (mine.name, mine.status, mine.agency_id, mine.slug) == (
        "Operation A", "paused", a.pk, "a-2026")
    assert not mine.partners.exists()
    event = AuditEvent.objects.filter(action="admin.change").get()
    assert (event.actor, event.campaign_id, event.object_type, event.object_id) == (
        a_admin, mine.pk, "campaign", str(mine.pk))
    assert event.data["model"] == "campaign.campaign"
    assert event.data["fields"] == {"name": "Operation A", "status": "paused"}


def test_the_admin_checks_what_the_staff_forms_check(client, world):
    """An agency language that is none of the 21 (every batch would fail), and a control
    group of more than half the contacts, are refused with the field's error."""
    a, _, a_admin, _, _, rows = world
    client.force_login(a_admin)
    mine = rows[A][Campaign]
    post = {"name": "Operation A", "status": "active", "reprobe_interval_days": 7,
            "followup_delay_days": 30, "holdout_seed": ""}
    for percent in (101, 60):
        response = client.post(admin_url(Campaign, "change", mine.pk),
                               {**post, "holdout_percent": percent})
        assert response.status_code == 200 and "between 0 and 50 percent" in (
            response.content.decode())
    mine.refresh_from_db()
    assert mine.holdout_percent == 0
    assert client.post(admin_url(Campaign, "change", mine.pk),
                       {**post, "holdout_percent": 10}).status_code == 302
    agency_page = admin_url(Agency, "change", a.pk)
    fields = {"letterhead": "", "sender_email": "", "reply_to": "", "signature": "",
              "info_url": "", "instructions_url": ""}
    response = client.post(agency_page, {**fields, "default_language": "xx"})
    assert response.status_code == 200 and "not a letter language" in response.content.decode()
    assert client.post(agency_page, {**fields, "default_language": "pt-BR"}).status_code == 302
    a.refresh_from_db()
    assert a.default_language == normalize("pt-BR")


def test_a_partner_sees_a_joint_campaign_but_only_its_lead_changes_it(client, world):
    a, _, a_admin, _, _, rows = world
    theirs = rows[B][Campaign]
    theirs.partners.add(a)
    client.force_login(a_admin)
    url = admin_url(Campaign, "change", theirs.pk)
    page = client.get(url)
    assert page.status_code == 200 and 'name="status"' not in page.content.decode()
    assert client.post(url, {"name": "x", "status": "closed"}).status_code == 403
    theirs.refresh_from_db()
    assert theirs.status == "active"


def test_a_bound_admin_edits_only_its_own_agencys_letter_settings(client, world):
    a, b, a_admin, _, _, _ = world
    client.force_login(a_admin)
    assert client.get(admin_url(Agency, "change", b.pk)).status_code == 404
    assert client.post(admin_url(Agency, "change", b.pk), {"name": "x"}).status_code == 404
    response = client.post(admin_url(Agency, "change", a.pk), {
        "letterhead": "AGENCY A", "sender_email": "sys@a.example", "reply_to": "",
        "signature": "", "info_url": "", "instructions_url": "", "default_language": "en",
        # Routing and identity are not the agency admin's to change here.
        "name": "Agency B2", "jurisdiction": '["FR", "DE"]', "country": "FR"})
    assert response.status_code == 302, response.content.decode()[:2000]
    a.refresh_from_db()
    assert (a.letterhead, a.sender_email, a.name, a.country, a.jurisdiction) == (
        "AGENCY A", "sys@a.example", A, "US", [])
    assert AuditEvent.objects.filter(action="admin.change", object_type="agency",
                                     object_id=str(a.pk)).count() == 1


def test_form_choices_offer_nothing_of_another_agency(world):
    """Every FK and M2M field of every scoped admin, as its form would build it for A."""
    _, _, a_admin, b_admin, root, rows = world
    request = request_for(a_admin)
    checked = 0
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, ScopedAdmin):
            continue
        for db_field in model._meta.get_fields():
            if not isinstance(db_field, ForeignKey | OneToOneField | ManyToManyField):
                continue
            formfield = model_admin.formfield_for_dbfield(db_field, request)
            if formfield is None:  # an M2M through its own model: no form field
                continue
            offered = formfield.queryset
            related = db_field.remote_field.model
            theirs = b_admin if related is User else rows[B].get(related)
            if theirs is not None:
                assert not offered.filter(pk=theirs.pk).exists(), (model, db_field.name)
            if related in (NetworkRecord, Feed, Group):
                assert not offered.exists(), (model, db_field.name)
            checked += 1
    assert checked > 20
    # Users bound to no agency are offered everything.
    campaign_admin = admin.site._registry[Campaign]
    agency_field = campaign_admin.formfield_for_dbfield(Campaign._meta.get_field("agency"),
                                                       request_for(root))
    assert set(agency_field.queryset) == set(Agency.objects.all())


def test_every_admin_write_is_in_the_audit_log(client, world):
    _, b, _, _, root, rows = world
    client.force_login(root)
    # add
    response = client.post(admin_url(Feed, "add"), {
        "name": "spamhaus-drop", "format": "drop", "url": "", "created_at_0": "2026-12-01",
        "created_at_1": "10:00:00"})
    assert response.status_code == 302
    feed = Feed.objects.get(name="spamhaus-drop")
    added = AuditEvent.objects.get(action="admin.add")
    assert (added.actor, added.object_type, added.object_id) == (root, "feed", str(feed.pk))
    assert added.data["fields"]["name"] == "spamhaus-drop"
    # change, with a cross-agency field: allowed to users bound to no agency, and recorded
    theirs = rows[B][Campaign]
    a = Agency.objects.get(name=A)
    response = client.post(admin_url(Campaign, "change", theirs.pk), {
        "agency": b.pk, "slug": theirs.slug, "name": theirs.name, "kinds": 3,
        "status": "active", "reprobe_interval_days": 7, "followup_delay_days": 30,
        "holdout_percent": 0, "holdout_seed": "", "partners": [a.pk],
        "created_at_0": "2026-01-01", "created_at_1": "00:00:00"})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(theirs.partners.all()) == [a]
    changed = AuditEvent.objects.get(action="admin.change")
    assert changed.campaign_id == theirs.pk and changed.data["fields"]["partners"] == [a.pk]
    # delete
    response = client.post(admin_url(Feed, "delete", feed.pk), {"post": "yes"})
    assert response.status_code == 302 and not Feed.objects.filter(pk=feed.pk).exists()
    deleted = AuditEvent.objects.get(action="admin.delete")
    assert (deleted.object_type, deleted.object_id) == ("feed", str(feed.pk))
    # bulk delete
    entries = [rows[A][Suppression], rows[B][Suppression]]
    response = client.post(admin_url(Suppression, "changelist"), {
        "action": "delete_selected", "_selected_action": [e.pk for e in entries],
        "post": "yes"})
    assert response.status_code == 302
    assert not Suppression.objects.filter(pk__in=[e.pk for e in entries]).exists()
    assert set(AuditEvent.objects.filter(action="admin.delete", object_type="suppression")
               .values_list("object_id", flat=True)) == {str(e.pk) for e in entries}


def test_a_bulk_delete_that_fails_leaves_no_audit_row_behind(client, world):
    """The audit rows and the deletion are one transaction: neither happens alone."""
    _, _, _, _, root, rows = world
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION test_refuse_delete() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'refused by the test'; END; $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_refuse_delete BEFORE DELETE ON probes_suppression
                FOR EACH ROW EXECUTE FUNCTION test_refuse_delete();
        """)
    client.force_login(root)
    entry = rows[A][Suppression]
    with pytest.raises(InternalError, match="refused by the test"):
        client.post(admin_url(Suppression, "changelist"), {
            "action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"})
    assert Suppression.objects.filter(pk=entry.pk).exists()
    assert not AuditEvent.objects.filter(action="admin.delete").exists()


def test_an_unbound_superuser_sees_and_opens_everything(client, world):
    _, _, _, _, root, rows = world
    client.force_login(root)
    for model in admin.site._registry:
        assert client.get(admin_url(model, "changelist")).status_code == 200, model
        for agency in (A, B):
            if model in rows[agency]:
                url = admin_url(model, "change", rows[agency][model].pk)
                assert client.get(url).status_code == 200, (model, agency)


def test_the_demo_admin_opens_the_admin_pages_of_its_agency(client, settings):
    settings.DEBUG = True
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.42.0/24"]
    call_command("seed_demo", stdout=io.StringIO())
    demo = User.objects.get(username="admin")
    client.force_login(demo)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    opened = 0
    for model, model_admin in admin.site._registry.items():
        url = admin_url(model, "changelist")
        if isinstance(model_admin, UnboundOnlyAdmin):
            assert url not in index.content.decode(), model
            assert client.get(url).status_code == 403, model
            continue
        assert url in index.content.decode(), model
        assert client.get(url).status_code == 200, model
        opened += 1
    assert opened == sum(isinstance(m, ScopedAdmin) for m in admin.site._registry.values())
    campaign = Campaign.objects.get(slug="demo")
    page = client.get(admin_url(Campaign, "change", campaign.pk))
    assert page.status_code == 200 and 'name="status"' in page.content.decode()
    agency = demo.staff_profile.agency
    assert client.get(admin_url(Agency, "change", agency.pk)).status_code == 200
    host = Host.objects.filter(campaign=campaign).first()
    assert client.get(admin_url(Host, "change", host.pk)).status_code == 200
