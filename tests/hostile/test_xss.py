"""XSS sweep: script in every field that can come from outside or from staff, then every page.

Each field gets its own numbered payload (`<script>alert(N)</script>"><img src=x
onerror=alert(N)>`, or `<svg onload=alert(N)>` where the column is short). Then every GET page
of the site (the names come from the URL resolver: a new page must be added here or the
completeness test fails), the recipient's page, reflected query parameters, a form re-shown
with its errors, and the Django admin's pages for a superuser. The raw payloads never appear
in an HTML page; JSON answers are JSON (with nosniff), never HTML; and every field's payload
is seen, escaped, on at least one page (so the sweep really looked at it).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone

from campaign import urls as root_urls
from campaign.models import (
    Agency,
    Campaign,
    Feed,
    FeedFetch,
    FeedImport,
    FeedSubscription,
    ImportLineIssue,
    Sighting,
)
from campaign.services import create_campaign
from letters import batches, sending
from letters.models import InboundMessage, Letter, LetterEvent
from letters.recipient import make_token
from probes.contacts.models import Contact, ContactOverride, ContactRun, NetworkRecord
from probes.contacts.suppression import suppress
from probes.verification.models import ProbeResult, ProbeRun
from tests.conftest import make_user
from tests.letters.conftest import add_finding, add_postal_finding

pytestmark = [pytest.mark.django_db,
              # the Django admin's forms for the agency's URL fields (not ours to change here)
              pytest.mark.filterwarnings("ignore::django.utils.deprecation.RemovedInDjango60Warning")]

RAW = ("<script>alert(", "<img src=x onerror", "<svg onload=", "javascript:alert")
FIELDS: dict[str, int] = {}


def payload(field: str, short: bool = False) -> str:
    n = FIELDS.setdefault(field, len(FIELDS) + 1)
    return f"<svg onload=alert({n})>" if short else (
        f"<script>alert({n})</script>\"><img src=x onerror=alert({n})>")


def escaped_marker(n: int) -> tuple[str, str]:
    return f"&lt;script&gt;alert({n})&lt;/script&gt;", f"&lt;svg onload=alert({n})&gt;"


@pytest.fixture
def world(settings, client):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.RECIPIENT_RATE_LIMITS = {"feedback_token": (100, 60), "feedback_ip": (100, 60)}
    agency = Agency.objects.create(
        name=payload("agency.name"), country="US", sender_email="sys@ftc.example",
        reply_to="answers@ftc.example", letterhead=payload("agency.letterhead"),
        signature=payload("agency.signature"))
    campaign = create_campaign(slug="xss-2026", agency_name=agency.name)
    Campaign.objects.filter(pk=campaign.pk).update(name=payload("campaign.name"))
    campaign.refresh_from_db()
    admin_user = make_user("admin-user", "admin", agency.name)
    # The admin's API token, named by a payload (its list shows the name).
    from campaign.tokens import create_token  # noqa: PLC0415
    create_token(user=admin_user, name=payload("api_token.name"))
    builder = make_user("builder", "staff", agency.name)
    reviewer = make_user("reviewer", "reviewer", agency.name)

    # Registry answers: the network's name and organisation, the contact's details.
    host = add_finding(campaign, email="abuse@isp.example", ip="198.51.100.7", country="US")
    other = add_finding(campaign, email="noc@other.example", ip="198.51.100.8", country="US")
    now = timezone.now()
    network = NetworkRecord.objects.create(
        network="198.51.100.0/24", start_address="198.51.100.0",
        end_address="198.51.100.255", cidrs=["198.51.100.0/24"],
        name=payload("network.name"), handle=payload("network.handle"),
        organisation=payload("network.organisation"), raw=payload("network.raw"),
        email="abuse@isp.example", source="rdap", server=payload("network.server"),
        expires_at=now + timedelta(days=30))
    Contact.objects.filter(host=host).update(
        network=network, organisation=payload("contact.organisation"),
        server=payload("contact.server"), handle=payload("contact.handle"),
        last_error=payload("contact.last_error"), manual=True, overridden_by=builder,
        override_reason=payload("contact.override_reason"), overridden_at=now)
    ContactOverride.objects.create(host=host, email="abuse@isp.example", created_by=builder,
                                   reason=payload("override.reason"), created_at=now)

    # Probes: what the remote server said, and the run's error.
    ProbeResult.objects.filter(host=host).update(
        transcript=payload("probe.transcript"), error=payload("probe.error"),
        variant=payload("probe.variant", short=True))
    ProbeRun.objects.filter(campaign=campaign).update(error=payload("probe_run.error"))
    contact_run = ContactRun.objects.create(campaign=campaign, status=ContactRun.DONE,
                                            error=payload("contact_run.error"))

    # A feed and its import: name, source, the rejected lines, the sightings' tags.
    feed = Feed.objects.create(name=payload("feed.name"))
    feed_import = FeedImport.objects.create(
        campaign=campaign, feed=feed, source=payload("import.source"), kind=1,
        status=FeedImport.DONE, error=payload("import.error"))
    ImportLineIssue.objects.create(
        feed_import=feed_import, line_no=3, content=payload("issue.content"),
        reason=payload("issue.reason", short=True), message=payload("issue.message"),
        rejected=True)
    Sighting.objects.create(host=host, feed_import=feed_import, line_no=1, seen_at=now, kind=1,
                            tag=payload("sighting.tag"), evidence={"x": "y"})
    # A feed subscription whose URL, error and fetch history carry payloads.
    subscription = FeedSubscription.objects.create(
        campaign=campaign, url="https://feeds.example/" + payload("subscription.url", True),
        interval_seconds=3600, failures=5, last_error=payload("subscription.error"),
        auth_secret=payload("subscription.secret", short=True))
    FeedFetch.objects.create(subscription=subscription, outcome=FeedFetch.FAILED,
                             error=payload("fetch.error"), feed_import=feed_import)

    # Letters: one batch approved with a comment and sent, one rejected with a comment.
    sent_batch = batches.build_batch(campaign=campaign, actor=builder, max_letters=1)
    batches.submit_batch(batch=sent_batch, actor=builder)
    batches.approve_batch(batch=sent_batch, actor=reviewer,
                           comment=payload("batch.approve_comment"))
    sending.send_batch(batch=sent_batch)
    letter = Letter.objects.get(batch=sent_batch)
    rejected = batches.build_batch(campaign=campaign, actor=builder)
    batches.submit_batch(batch=rejected, actor=builder)
    batches.reject_batch(batch=rejected, actor=reviewer, comment=payload("batch.reject_comment"))
    # A postal letter, to an address a registry wrote.
    add_postal_finding(campaign, address=payload("letter.postal_address"), ip="198.51.100.9")
    postal_batch = batches.build_batch(campaign=campaign, actor=builder)
    batches.submit_batch(batch=postal_batch, actor=builder)
    batches.approve_batch(batch=postal_batch, actor=reviewer)
    postal_letter = postal_batch.letters.get(channel="postal")
    Letter.objects.filter(pk=letter.pk).update(
        subject=payload("letter.subject"), last_error=payload("letter.last_error"))
    LetterEvent.objects.create(letter=letter, esp="Fuzz", event_type="bounced",
                               description=payload("event.description"))
    InboundMessage.objects.create(
        letter=letter, esp="Fuzz", from_email=payload("reply.from", short=True),
        subject=payload("reply.subject"), text=payload("reply.text"),
        html=payload("reply.html"))
    suppress(value="spam.example", actor=admin_user, reason=payload("suppression.reason"))

    token = make_token(letter.idempotency_key)
    # The recipient writes on the page too (its text lands on the letter's thread).
    path = reverse("recipient_feedback", args=[token])
    assert client.post(path, {"kind": "message", "text": payload("recipient.text")}
                       ).status_code == 302
    # And the contact's address itself, as if a registry (or a bug) had stored it.
    Contact.objects.filter(host=other).update(email=payload("contact.email", short=True))
    Letter.objects.filter(pk=letter.pk).update(email=payload("letter.email", short=True))

    return {
        "slug": campaign.slug, "ip": host.ip, "import": feed_import.pk,
        "subscription": subscription.pk,
        "probe_run": ProbeRun.objects.get(campaign=campaign).pk, "contact_run": contact_run.pk,
        "batch": sent_batch.pk, "rejected": rejected.pk, "letter": letter.pk, "token": token,
        "agency": agency.pk, "admin": admin_user,
        "postal_batch": postal_batch.pk, "postal_letter": postal_letter.pk,
    }


def pages(w: dict) -> list[tuple[str, tuple, str]]:
    """(url name, args, query string) of every page a GET shows."""
    s = w["slug"]
    q = "?q=" + payload("reflected.q", short=True).replace(" ", "%20")
    return [
        ("campaign_list", (), ""), ("campaign_create", (), ""), ("campaign_detail", (s,), ""),
        ("import_create", (s,), ""), ("import_detail", (s, w["import"]), ""),
        ("import_detail", (s, w["import"]), "?page=" + payload("reflected.page", True)),
        ("import_status", (s, w["import"]), ""),
        ("feed_list", (s,), ""), ("feed_detail", (s, w["subscription"]), ""),
        ("api_tokens", (), ""),
        ("probe_run_start", (s,), ""), ("probe_run_detail", (s, w["probe_run"]), ""),
        ("probe_run_status", (s, w["probe_run"]), ""),
        ("contact_run_start", (s,), ""), ("contact_run_detail", (s, w["contact_run"]), ""),
        ("contact_run_status", (s, w["contact_run"]), ""),
        ("batch_create", (s,), ""), ("batch_detail", (s, w["batch"]), ""),
        ("batch_detail", (s, w["rejected"]), ""), ("batch_status", (s, w["batch"]), ""),
        ("letter_list", (s,), ""), ("letter_detail", (s, w["letter"]), ""),
        ("deliverability", (s,), ""),
        ("letter_preview", (s, w["letter"]), ""), ("review_queue", (), ""),
        ("batch_detail", (s, w["postal_batch"]), ""),
        ("letter_detail", (s, w["postal_letter"]), ""),
        ("letter_preview", (s, w["postal_letter"]), ""),
        ("agency_list", (), ""), ("agency_settings", (w["agency"],), ""),
        ("template_edit", ("first_notice.body.html",), ""),
        ("template_edit", ("first_notice.subject.txt",), ""),
        ("suppression_list", (), ""), ("suppression_list", (), q),
        ("host_list", (s,), ""), ("host_list", (s,), q), ("host_detail", (s, w["ip"]), ""),
        ("contact_set", (s, w["ip"]), ""),
        ("password_change", (), ""), ("password_change_done", (), ""),
    ]


def recipient_pages(w: dict) -> list[tuple[str, tuple, str]]:
    t = w["token"]
    return [
        ("recipient_page", (t,), ""),
        ("recipient_page", (t,), "?lang=" + payload("reflected.lang", True) + "&sent=2&run=1"),
        ("recipient_run_status", (t, 987654), ""),
        ("short_link", (payload("reflected.short_code", True),), ""),
    ]


# Downloads, not pages: the printed letters and their address list (checked below).
NOT_HTML = {"batch_print", "batch_addresses", "letter_pdf"}


POST_ONLY = {"logout", "feed_action", "campaign_automation", "api_token_revoke",
             "batch_approve", "batch_reject",
             "batch_submit", "batch_send", "letter_remove", "batch_posted", "letter_returned",
             "template_preview",
             "recipient_retest", "recipient_feedback", "recipient_preferences"}


def _named(patterns) -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLPattern) and pattern.name:
            names.add(pattern.name)
        elif isinstance(pattern, URLResolver) and pattern.namespace is None:
            names |= _named(pattern.url_patterns)
    return names


class Sweep:
    def __init__(self) -> None:
        self.html: list[tuple[str, str]] = []

    def check(self, where: str, response) -> None:
        assert response.status_code < 500, (where, response.status_code)
        body = response.content.decode()
        if response["Content-Type"].startswith("application/json"):
            json.loads(body)
            assert response.get("X-Content-Type-Options") == "nosniff", where
            return
        assert response["Content-Type"].startswith("text/html"), where
        for raw in RAW:
            assert raw not in body, (where, raw, body[max(0, body.find(raw) - 200):][:400])
        self.html.append((where, body))

    def seen(self, n: int) -> bool:
        return any(marker in body for _where, body in self.html for marker in escaped_marker(n))


def test_every_get_page_is_swept(world):
    swept = {name for name, _args, _query in pages(world) + recipient_pages(world)}
    assert swept | POST_ONLY | NOT_HTML | {"login"} == _named(root_urls.urlpatterns)


def test_the_downloads_are_what_they_say_and_run_nothing(client, world):
    client.force_login(world["admin"])
    s, batch, letter = world["slug"], world["postal_batch"], world["postal_letter"]
    for name, args, kind in (("batch_print", (s, batch), "application/pdf"),
                             ("letter_pdf", (s, letter), "application/pdf"),
                             ("batch_addresses", (s, batch), "text/csv")):
        response = client.get(reverse(name, args=args))
        assert response.status_code == 200, name
        assert response["Content-Type"].split(";")[0] == kind, name
        assert response["X-Content-Type-Options"] == "nosniff", name
    lines = client.get(reverse("batch_addresses", args=(s, batch))).content.decode()
    assert "<script>" in lines  # the address as written: a CSV is text, not a page


def test_no_page_shows_a_payload_unescaped(client, world):
    sweep = Sweep()
    client.force_login(world["admin"])
    for name, args, query in pages(world):
        url = reverse(name, args=args) + query
        sweep.check(url, client.get(url))
    # A form shown again with its errors echoes what was typed.
    url = reverse("contact_set", args=[world["slug"], world["ip"]])
    sweep.check(url, client.post(url, {"email": payload("form.email", True),
                                       "reason": payload("form.reason")}))
    url = reverse("suppression_list")
    sweep.check(url, client.post(url, {"value": payload("form.value", True), "reason": "x"}))
    url = reverse("template_edit", args=["first_notice.subject.txt"])
    sweep.check(url, client.post(url, {"source": "{{ " + payload("form.template") + " }}"}))
    client.logout()
    for name, args, query in recipient_pages(world):
        url = reverse(name, args=args) + query
        sweep.check(url, client.get(url))
    sweep.check("login", client.get(reverse("login") + "?next=" + payload("reflected.next")))

    # The Django admin, for a superuser: every registered model's list and one change page.
    root = get_user_model().objects.create_superuser("root", "root@example.org", "x-9-long-pw")
    client.force_login(root)
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        url = reverse("admin:{}_{}_changelist".format(*info))
        sweep.check(url, client.get(url))
        obj = model.objects.order_by("pk").first()
        if obj is not None and model_admin.has_view_permission(
                type("R", (), {"user": root})()):
            url = reverse("admin:{}_{}_change".format(*info), args=[obj.pk])
            sweep.check(url, client.get(url))

    # Every stored field was looked at (reflected parameters need not be shown at all).
    unseen = [field for field, n in FIELDS.items()
              if not sweep.seen(n) and not field.startswith("reflected.")]
    assert unseen == [], unseen


def test_no_page_links_to_a_javascript_url(client, world):
    """Agency links are URLs from staff: a javascript: URL never becomes a link, on the staff
    pages or on the recipient's page (which shows the letter's copy of the agency)."""
    evil = {"info_url": "javascript:alert(1)//", "instructions_url": " JaVaScRiPt:alert(2)"}
    Agency.objects.filter(pk=world["agency"]).update(**evil)
    letter = Letter.objects.get(pk=world["letter"])
    letter.context["agency"].update(evil)
    Letter.objects.filter(pk=letter.pk).update(context=letter.context)
    link = re.compile(r"""(href|src|action|formaction)\s*=\s*["']?\s*javascript:""", re.I)
    client.force_login(world["admin"])
    for name, args, query in pages(world) + recipient_pages(world):
        body = client.get(reverse(name, args=args) + query).content.decode()
        assert not link.search(body), name
