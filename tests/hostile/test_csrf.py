"""CSRF: every URL of the site that takes a POST refuses one without the token, and changes
nothing; the ESP webhooks are exempt by design and take signed calls only.

The URLs and their arguments are the access matrix's rows (tests/test_access_matrix.py
checks those name every URL of the site); which of them take a POST is asked of the site
itself (the methods a 405 allows), so a new form cannot be forgotten here. Each is posted by
a signed-in admin, the role that may do everything, so the refusal is CSRF's: Django's CSRF
failure page, not a permission's 403.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from campaign.models import Agency, AuditEvent, FeedImport, Host
from letters.models import (
    Batch,
    ContactPreference,
    InboundMessage,
    Letter,
    LetterEvent,
    LetterTemplate,
)
from probes.contacts.models import Contact, ContactRun, Suppression
from probes.verification.models import ProbeRun
from tests.hostile.conftest import AUTH
from tests.test_access_matrix import rows, world  # noqa: F401 (the matrix's fixture)

pytestmark = pytest.mark.django_db

FORM_DATA = {  # what a browser's form would carry, minus the token
    "source": "Open server at {{ ips }}", "email": "noc@isp.example", "reason": "asked to",
    "value": "spam.example", "comment": "fine", "mode": "pending", "url": "https://f.example/x",
    "format": "auto", "kind": "message", "text": "closed it", "letter_language": "de",
    "username": "admin-user", "password": "correct-horse-9", "old_password": "correct-horse-9",
    "new_password1": "An0ther-horse-9!", "new_password2": "An0ther-horse-9!",
    "sender_email": "other@ftc.example", "default_language": "de",
}


def state() -> tuple:
    """Everything a POST of the site could change."""
    user = get_user_model().objects.get(username="admin-user")
    return (
        AuditEvent.objects.count(), FeedImport.objects.count(), ProbeRun.objects.count(),
        ContactRun.objects.count(), Suppression.objects.count(), LetterTemplate.objects.count(),
        InboundMessage.objects.count(), LetterEvent.objects.count(),
        ContactPreference.objects.count(),
        tuple(Batch.objects.order_by("id").values_list("state", flat=True)),
        tuple(Letter.objects.order_by("id").values_list("state", "email", "posted_at",
                                                        "returned_at")),
        tuple(Contact.objects.order_by("id").values_list("email", "review_requested_at")),
        tuple(Host.objects.order_by("id").values_list("state", flat=True)),
        tuple(Agency.objects.order_by("id").values_list("sender_email", "default_language")),
        user.password,
    )


def takes_post(client: Client, path: str) -> bool:
    """Ask the view: a method no view takes gets a 405 listing the ones it does."""
    response = client.generic("PATCH", path)
    return response.status_code != 405 or "POST" in response.get("Allow", "")


def test_every_post_url_refuses_a_post_without_the_token_and_changes_nothing(world):  # noqa: F811
    probe = Client()
    probe.force_login(world.users["admin"])
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world.users["admin"])
    posted = []
    for row in rows(world):
        path = reverse(row.name, args=row.args)
        if not takes_post(probe, path):
            continue
        before = state()
        response = strict.post(path, FORM_DATA)
        assert response.status_code == 403, (row.name, response.status_code)
        assert b"CSRF verification failed" in response.content, row.name
        assert state() == before, row.name
        posted.append(row.name)
    # Still signed in: logout without the token did not log out.
    assert strict.get(reverse("campaign_list")).status_code == 200
    assert set(posted) == {
        "login", "logout", "password_change", "campaign_create", "import_create",
        "feed_list", "feed_action", "campaign_automation", "api_tokens", "api_token_revoke",
        "probe_run_start",
        "contact_run_start", "batch_create", "batch_submit", "batch_approve", "batch_reject",
        "batch_send", "letter_remove", "batch_posted", "letter_returned", "agency_settings",
        "template_edit", "template_preview",
        "suppression_list", "contact_set", "recipient_retest", "recipient_feedback",
        "recipient_preferences",
    }


def test_with_the_token_the_same_posts_pass_the_csrf_check(world):  # noqa: F811
    """The control: the refusals above are the missing token's, not something else's."""
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world.users["admin"])
    strict.get(reverse("import_create", args=[world.campaign.slug]))  # sets the CSRF cookie
    token = strict.cookies["csrftoken"].value
    for name, args in (("template_preview", ("first_notice.subject.txt",)),
                       ("suppression_list", ()), ("contact_set", (world.campaign.slug,
                                                                  world.host.ip)),
                       ("recipient_feedback", (world.token,))):
        response = strict.post(reverse(name, args=args),
                               {**FORM_DATA, "csrfmiddlewaretoken": token})
        assert b"CSRF verification failed" not in response.content, name
        assert response.status_code in (200, 302), (name, response.status_code)


def test_the_django_admin_refuses_posts_without_the_token(world):  # noqa: F811
    root = get_user_model().objects.create_superuser("root", "root@example.org", "x-9-long-pw")
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(reverse("admin:login"), {"username": "root",
                                                "password": "x-9-long-pw"}).status_code == 403
    strict.force_login(root)
    agency = Agency.objects.order_by("id").first()
    before = state()
    for path in (reverse("admin:campaign_agency_change", args=[agency.pk]),
                 reverse("admin:campaign_agency_delete", args=[agency.pk]),
                 reverse("admin:campaign_agency_add")):
        response = strict.post(path, {"name": "changed", "post": "yes"})
        assert response.status_code == 403 and b"CSRF verification failed" in response.content
    assert state() == before and Agency.objects.filter(name="changed").count() == 0


@pytest.mark.filterwarnings("ignore:.*(SendGrid|SendinBlue).*")
def test_webhooks_are_csrf_exempt_but_take_only_signed_calls(world, settings):  # noqa: F811
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:hostile-webhook-pass"}
    settings.ANYMAIL_WEBHOOK_ESPS = ["sendgrid"]
    strict = Client(enforce_csrf_checks=True)
    event = [{"email": "abuse@isp.us.example", "timestamp": 1763719200, "event": "delivered",
              "sg_event_id": "csrf-1", "smtp-id": "<nobody@example>"}]
    url = reverse("anymail:sendgrid_tracking_webhook")
    before = LetterEvent.objects.count()
    forged = strict.post(url, event, content_type="application/json")
    assert forged.status_code == 400 and LetterEvent.objects.count() == before
    signed = strict.post(url, event, content_type="application/json", **AUTH)
    assert signed.status_code == 200 and LetterEvent.objects.count() == before + 1
