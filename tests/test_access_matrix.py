"""Who gets in: every named URL × every role (and anonymous, and another agency's admin).

The expected answer of each cell follows from one row per URL (the permission it needs, the
methods it takes, whether it is scoped to a campaign or an agency), not from a recording of
what the views happen to answer: anonymous → 302 to the login page, a role without the
permission → 403, another agency's admin → 404 on the campaign's pages, a wrong method → 405.
Also: the audit log is append-only down to the database, and the ESP webhooks turn away
unsigned calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.db import InternalError, connection, transaction
from django.urls import URLPattern, URLResolver, reverse

from campaign import urls as root_urls
from campaign import web_urls
from campaign.models import Agency, AuditEvent, Feed, FeedImport, FeedSubscription
from campaign.roles import ROLE_PERMISSIONS
from campaign.services import create_campaign
from letters import batches, recipient_urls
from letters import states as letter_states
from letters.models import Letter
from letters.recipient import make_token
from probes.contacts.models import ContactRun
from probes.verification.models import ProbeRun
from tests.conftest import make_user
from tests.letters import conftest as letters_fixtures
from tests.letters.conftest import add_finding, add_postal_finding

pytestmark = pytest.mark.django_db

compiled_translations = letters_fixtures.compiled_translations

LEAD, OTHER = "Federal Trade Commission", "Commission Nationale"
ANONYMOUS, OUTSIDER = "anonymous", "outsider"
ROLES = ("analyst", "staff", "reviewer", "admin")
WHO = (ANONYMOUS, *ROLES, OUTSIDER)

PUBLIC = "public"  # no login needed
LOGGED_IN = "logged in"  # any signed-in user, whatever the role


@dataclass(frozen=True)
class Row:
    name: str
    method: str  # the method the matrix calls it with
    perm: str  # a campaign permission codename, PUBLIC or LOGGED_IN
    args: tuple = ()
    scope: str = ""  # "campaign": 404 for another agency; "agency": its own agency only
    ok: int | str = 200  # what a permitted caller gets; "acts": a POST let through
    wrong: str = ""  # a method the view refuses with 405


@pytest.fixture
def world(db, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "access-matrix"}}
    lead = Agency.objects.create(
        name=LEAD, country="US", jurisdiction=["US"], sender_email="sys@ftc.example",
        reply_to="answers@ftc.example", letterhead="FEDERAL TRADE COMMISSION",
        signature="Operation Secure Your Server, FTC", info_url="https://www.ftc.example/sys")
    Agency.objects.create(name=OTHER, country="FR", jurisdiction=["FR"])
    campaign = create_campaign(slug="matrix-2026", agency_name=LEAD)
    host = add_finding(campaign, email="abuse@isp.us.example", country="US")
    add_finding(campaign, email="noc@other.us.example", country="US")
    users = {role: make_user(f"{role}-user", role, LEAD) for role in ROLES}
    users[OUTSIDER] = make_user("outsider-admin", "admin", OTHER)
    builder = make_user("builder", "staff", LEAD)  # none of the matrix's users built the batch
    batch = batches.build_batch(campaign=campaign, actor=builder)
    draft, out = batch.letters.order_by("id")
    Letter.objects.filter(pk=out.pk).update(state=letter_states.SENT)  # its link works
    by_post = add_postal_finding(campaign, country="US")
    (postal,) = batches.build_batch(campaign=campaign, actor=builder).letters.all()
    return SimpleNamespace(
        postal=postal, by_post=by_post,
        lead=lead, campaign=campaign, host=host, users=users, batch=batch, letter=draft,
        token=make_token(out.idempotency_key),
        feed_import=FeedImport.objects.create(
            campaign=campaign, feed=Feed.objects.create(name="cbl"), source="cbl.txt", kind=1,
            status=FeedImport.DONE),
        probe_run=ProbeRun.objects.get(campaign=campaign),
        subscription=FeedSubscription.objects.create(
            campaign=campaign, url="https://feeds.example/open-relays.txt", kind="relay",
            interval_seconds=3600),
        contact_run=ContactRun.objects.create(campaign=campaign, status=ContactRun.DONE),
    )


def rows(w) -> list[Row]:
    slug, batch, letter = w.campaign.slug, w.batch.pk, w.letter.pk
    c = "campaign"
    return [
        # campaign/urls.py
        Row("login", "get", PUBLIC, wrong="delete"),
        Row("logout", "post", PUBLIC, ok=302, wrong="get"),  # GET logout: CSRF-able, refused
        Row("password_change", "get", LOGGED_IN),
        Row("password_change_done", "get", LOGGED_IN),
        # campaign/web_urls.py
        Row("campaign_list", "get", "view_campaign", wrong="post"),
        Row("campaign_create", "get", "add_campaign", wrong="put"),
        Row("campaign_detail", "get", "view_campaign", (slug,), c, wrong="post"),
        Row("import_create", "get", "import_feed", (slug,), c, wrong="put"),
        Row("import_detail", "get", "view_campaign", (slug, w.feed_import.pk), c, wrong="post"),
        Row("import_status", "get", "view_campaign", (slug, w.feed_import.pk), c, wrong="post"),
        Row("campaign_automation", "post", "change_campaign", (slug,), c, "acts",
            wrong="get"),
        Row("feed_list", "get", "view_campaign", (slug,), c, wrong="put"),
        Row("feed_detail", "get", "view_campaign", (slug, w.subscription.pk), c,
            wrong="post"),
        Row("feed_action", "post", "import_feed", (slug, w.subscription.pk), c, "acts",
            wrong="get"),
        Row("probe_run_start", "get", "run_probes", (slug,), c, wrong="put"),
        Row("probe_run_detail", "get", "view_campaign", (slug, w.probe_run.pk), c, wrong="post"),
        Row("probe_run_status", "get", "view_campaign", (slug, w.probe_run.pk), c, wrong="post"),
        Row("contact_run_start", "get", "resolve_contacts", (slug,), c, wrong="put"),
        Row("contact_run_detail", "get", "view_campaign", (slug, w.contact_run.pk), c,
            wrong="post"),
        Row("contact_run_status", "get", "view_campaign", (slug, w.contact_run.pk), c,
            wrong="post"),
        Row("batch_create", "get", "build_batch", (slug,), c, wrong="put"),
        Row("batch_detail", "get", "view_campaign", (slug, batch), c, wrong="post"),
        Row("batch_status", "get", "view_campaign", (slug, batch), c, wrong="post"),
        # Approve and reject before submit: whoever submits a batch may not approve it (four
        # eyes), which is a 403 of another kind (tests/letters cover it).
        Row("batch_approve", "post", "review_batch", (slug, batch), c, "acts", wrong="get"),
        Row("batch_reject", "post", "review_batch", (slug, batch), c, "acts", wrong="get"),
        Row("batch_submit", "post", "build_batch", (slug, batch), c, "acts", wrong="get"),
        Row("batch_send", "post", "send_batch", (slug, batch), c, "acts", wrong="get"),
        Row("letter_list", "get", "view_campaign", (slug,), c, wrong="post"),
        Row("deliverability", "get", "view_campaign", (slug,), c, wrong="post"),
        Row("letter_detail", "get", "view_campaign", (slug, letter), c, wrong="post"),
        Row("letter_preview", "get", "view_campaign", (slug, letter), c, wrong="post"),
        Row("letter_remove", "post", "build_batch", (slug, letter), c, "acts", wrong="get"),
        # Postal letters (a draft batch: printing and posting are refused until approved).
        Row("batch_print", "get", "send_batch", (slug, w.postal.batch_id), c, 409,
            wrong="post"),
        Row("batch_addresses", "get", "send_batch", (slug, w.postal.batch_id), c, 409,
            wrong="post"),
        Row("batch_posted", "post", "send_batch", (slug, w.postal.batch_id), c, "acts",
            wrong="get"),
        Row("letter_pdf", "get", "view_campaign", (slug, w.postal.pk), c, wrong="post"),
        Row("letter_returned", "post", "send_batch", (slug, w.postal.pk), c, "acts",
            wrong="get"),
        Row("review_queue", "get", "review_batch", wrong="post"),
        Row("api_tokens", "get", LOGGED_IN, wrong="put"),
        # Someone else's (here: nobody's) token does not exist for the caller.
        Row("api_token_revoke", "post", LOGGED_IN, (987654,), ok=404, wrong="get"),
        Row("agency_list", "get", "change_campaign", wrong="post"),
        Row("agency_settings", "get", "change_campaign", (w.lead.pk,), "agency", wrong="put"),
        Row("template_edit", "get", "change_campaign", ("first_notice.subject.txt",),
            wrong="put"),
        Row("template_preview", "post", "change_campaign", ("first_notice.subject.txt",),
            wrong="get"),
        Row("suppression_list", "get", "view_campaign", wrong="put"),
        Row("host_list", "get", "view_campaign", (slug,), c, wrong="post"),
        Row("host_detail", "get", "view_campaign", (slug, w.host.ip), c, wrong="post"),
        Row("contact_set", "get", "resolve_contacts", (slug, w.host.ip), c, wrong="put"),
        # letters/recipient_urls.py: the signed token is the key, whoever holds it
        Row("recipient_page", "get", PUBLIC, (w.token,), wrong="post"),
        Row("recipient_retest", "post", PUBLIC, (w.token,), ok="acts", wrong="get"),
        Row("recipient_run_status", "get", PUBLIC, (w.token, 987654), ok=404, wrong="post"),
        Row("recipient_feedback", "post", PUBLIC, (w.token,), ok="acts", wrong="get"),
        Row("recipient_preferences", "post", PUBLIC, (w.token,), ok="acts", wrong="get"),
        # A printed letter's short link: not posted yet, so it opens nothing.
        Row("short_link", "get", PUBLIC, (w.postal.short_code,), ok=404, wrong="post"),
    ]


def allowed(who: str, row: Row) -> bool:
    if row.perm == PUBLIC:
        return True
    if who == ANONYMOUS:
        return False
    if row.perm == LOGGED_IN:
        return True
    role = "admin" if who == OUTSIDER else who
    return row.perm in ROLE_PERMISSIONS[role]


def expected(who: str, row: Row) -> int | str:
    if not allowed(who, row):
        return 302 if who == ANONYMOUS else 403
    if who == OUTSIDER and row.scope in ("campaign", "agency"):
        return 404  # another agency's campaign (or settings) does not exist for it
    return row.ok


def _named(patterns, prefix: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLPattern) and pattern.name:
            names.add(prefix + pattern.name)
        elif isinstance(pattern, URLResolver) and pattern.namespace is None:
            names |= _named(pattern.url_patterns, prefix)
    return names


def test_the_matrix_names_every_url_of_the_site_and_the_recipient_pages(world):
    site = _named(root_urls.urlpatterns)  # admin and anymail are namespaced: see below
    assert {row.name for row in rows(world)} == site
    assert _named(web_urls.urlpatterns) | _named(recipient_urls.urlpatterns) <= site


@pytest.mark.parametrize("who", WHO)
def test_every_url_answers_each_role_as_its_permissions_say(client, world, who):
    if who != ANONYMOUS:
        client.force_login(world.users[who])
    cells = 0
    for row in rows(world):
        path = reverse(row.name, args=row.args)
        response = getattr(client, row.method)(path)
        want, got = expected(who, row), response.status_code
        if want == "acts":
            assert got not in (403, 404, 405) and got < 500, (row.name, who, got)
        else:
            assert got == want, (row.name, who, got)
        if want == 302 and who == ANONYMOUS and row.name != "logout":
            assert response["Location"].startswith("/login/?next="), (row.name, response)
        cells += 1
        if row.name == "logout" and who != ANONYMOUS:
            client.force_login(world.users[who])  # signed out by the row itself: back in
    assert cells == len(rows(world))


def test_a_forged_or_foreign_recipient_token_opens_nothing(client, world):
    draft_token = make_token(world.letter.idempotency_key)  # a letter that never left
    for token in (world.token[:-2] + "xx", draft_token, "not-a-token"):
        assert client.get(reverse("recipient_page", args=[token])).status_code == 404
        assert client.post(reverse("recipient_feedback", args=[token])).status_code == 404


def test_a_refused_post_changes_nothing(client, world):
    """An analyst's submit, approve, send and remove are refused and leave the batch alone."""
    client.force_login(world.users["analyst"])
    before = (world.batch.state, world.batch.letters.count(), AuditEvent.objects.count())
    for name, pk in (("batch_submit", world.batch.pk), ("batch_approve", world.batch.pk),
                     ("batch_send", world.batch.pk), ("letter_remove", world.letter.pk)):
        assert client.post(reverse(name, args=[world.campaign.slug, pk])).status_code == 403
    world.batch.refresh_from_db()
    assert (world.batch.state, world.batch.letters.count(), AuditEvent.objects.count()) == before


def test_every_url_refuses_the_methods_it_does_not_take(client, world):
    client.force_login(world.users["admin"])
    refusing = [row for row in rows(world) if row.wrong]  # the password forms take both
    assert len(refusing) == len(rows(world)) - 2
    for row in refusing:
        response = getattr(client, row.wrong)(reverse(row.name, args=row.args))
        assert response.status_code == 405, (row.name, row.wrong, response.status_code)


@pytest.mark.parametrize("who", WHO)
def test_only_admins_reach_the_django_admin_and_none_may_edit_the_audit_log(client, world, who):
    if who != ANONYMOUS:
        client.force_login(world.users[who])
    event = AuditEvent.objects.order_by("id").first()
    index = client.get(reverse("admin:index"))
    assert index.status_code == (200 if who in ("admin", OUTSIDER) else 302)
    for name, args in (("admin:campaign_auditevent_changelist", ()),
                       ("admin:campaign_auditevent_change", (event.pk,)),
                       ("admin:campaign_auditevent_delete", (event.pk,))):
        response = client.get(reverse(name, args=args))
        # Role admins are staff of the site but hold no model permission on the log.
        assert response.status_code == (403 if who in ("admin", OUTSIDER) else 302), name


def test_a_superuser_can_read_the_audit_log_in_the_admin_but_not_change_or_delete_it(
    client, world
):
    root = get_user_model().objects.create_superuser("root", "root@example.org", "x-9-long-pw")
    client.force_login(root)
    event = AuditEvent.objects.order_by("id").first()
    before = (AuditEvent.objects.count(), event.action, event.data)
    changelist = reverse("admin:campaign_auditevent_changelist")
    assert client.get(changelist).status_code == 200
    assert client.get(reverse("admin:campaign_auditevent_add")).status_code == 403
    change = reverse("admin:campaign_auditevent_change", args=[event.pk])
    assert client.get(change).status_code == 200  # a read-only view
    assert client.post(change, {"action": "rewritten", "data": "{}"}).status_code == 403
    delete = reverse("admin:campaign_auditevent_delete", args=[event.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    response = client.post(changelist, {"action": "delete_selected",
                                        "_selected_action": [event.pk], "post": "yes"})
    assert response.status_code in (200, 302)  # no such action: nothing happens
    event.refresh_from_db()
    assert (AuditEvent.objects.count(), event.action, event.data) == before


def test_the_database_itself_refuses_to_update_or_delete_audit_events(world):
    assert connection.vendor == "postgresql"
    event = AuditEvent.objects.order_by("id").first()
    action = event.action
    for statement in ("UPDATE campaign_auditevent SET action = 'rewritten' WHERE id = %s",
                      "DELETE FROM campaign_auditevent WHERE id = %s"):
        with pytest.raises(InternalError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement, [event.pk])
    with pytest.raises(InternalError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="rewritten")  # the ORM path too
    with pytest.raises(InternalError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    event.refresh_from_db()
    assert event.action == action and AuditEvent.objects.filter(pk=event.pk).exists()


def test_deleting_a_campaign_cannot_take_its_audit_trail_with_it(world):
    events = AuditEvent.objects.filter(campaign=world.campaign).count()
    assert events > 0
    # Refused by Django (PROTECT) before the database trigger would refuse it anyway.
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError), transaction.atomic():
        world.campaign.delete()
    assert AuditEvent.objects.filter(campaign=world.campaign).count() == events


# ESPs whose webhook views this install can construct: amazon_ses needs boto3 and resend's
# tracking needs svix, neither installed (the project does not use those ESPs).
NOT_INSTALLED = {"amazon_ses_inbound_webhook", "amazon_ses_tracking_webhook",
                 "resend_tracking_webhook"}


@pytest.mark.filterwarnings("ignore:.*(SendGrid|SendinBlue).*")  # anymail's deprecation notes
def test_every_esp_webhook_turns_away_an_unsigned_call(client, world, settings):
    from anymail import urls as anymail_urls

    settings.ANYMAIL = {
        "WEBHOOK_SECRET": "hook:secret-secret", "MAILGUN_WEBHOOK_SIGNING_KEY": "k",
        "POSTAL_WEBHOOK_KEY": "k", "MANDRILL_WEBHOOK_KEY": "k", "BREVO_API_KEY": "k",
        "SENDINBLUE_API_KEY": "k", "MAILTRAP_API_TOKEN": "k", "MAILERSEND_SIGNING_SECRET": "k",
        "MAILERSEND_INBOUND_SECRET": "k", "RESEND_API_KEY": "k", "UNISENDER_GO_API_KEY": "k",
    }
    settings.ANYMAIL_WEBHOOK_ESPS = [p.callback.view_class.__module__.rsplit(".", 1)[-1]
                                     for p in anymail_urls.urlpatterns]
    client.force_login(world.users["admin"])  # a staff session is no credential either
    checked = 0
    for pattern in anymail_urls.urlpatterns:
        if pattern.name in NOT_INSTALLED:
            continue
        path = reverse(f"anymail:{pattern.name}")
        before = AuditEvent.objects.count()
        response = client.post(path, data="{}", content_type="application/json")
        assert response.status_code == 400, (pattern.name, response.status_code)
        if pattern.name != "unisender_go_tracking_webhook":  # answers GET: its URL check
            assert client.get(path).status_code == 405, pattern.name
        assert AuditEvent.objects.count() == before
        checked += 1
    assert checked == len(anymail_urls.urlpatterns) - len(NOT_INSTALLED)

