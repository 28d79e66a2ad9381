"""Every staff page, the login page and the admin carry the strict CSP (campaign/csp.py); the
recipient page keeps its own."""

from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from campaign.csp import LETTER_HTML_POLICY, POLICY
from letters import sending
from letters.models import Letter
from letters.recipient_views import CSP as RECIPIENT_CSP
from tests.letters.conftest import add_finding, compiled_translations  # noqa: F401
from tests.letters.helpers import approved_batch

pytestmark = pytest.mark.django_db

REQUIRED = ["default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'self'",
            "form-action 'self'", "frame-ancestors 'none'"]


def directives(header: str) -> set[str]:
    return {part.strip() for part in header.split(";")}


def test_the_policy_is_strict():
    assert set(REQUIRED) <= directives(POLICY)
    assert "unsafe-inline" not in POLICY and "unsafe-eval" not in POLICY


def test_staff_pages_login_and_admin_carry_the_policy(client, campaign, bob, rita):
    from tests.conftest import make_user

    host = add_finding(campaign, email="abuse@isp.example", language="de", country="DE")
    batch = approved_batch(campaign, bob, rita)
    assert client.get(reverse("login"))["Content-Security-Policy"] == POLICY
    client.force_login(make_user("ada", "admin"))
    slug = campaign.slug
    for path in ("/", f"/c/{slug}/", f"/c/{slug}/hosts/{host.ip}/",
                 f"/c/{slug}/batches/{batch.pk}/", "/admin/", "/no-such-page/"):
        response = client.get(path)
        assert response["Content-Security-Policy"] == POLICY, (path, response.status_code)


def test_the_recipient_page_keeps_its_own_policy(client, campaign, bob, rita):
    add_finding(campaign, email="abuse@isp.example", language="en", country="US")
    assert sending.send_batch(batch=approved_batch(campaign, bob, rita)).sent == 1
    letter = Letter.objects.get()
    response = client.get(urlsplit(letter.context["recipient_url"]).path)
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == RECIPIENT_CSP


def test_pages_showing_a_letters_html_allow_its_inline_styles_and_nothing_more(client, campaign,
                                                                              bob, rita):
    """Mail HTML is styled inline; the sandboxed srcdoc frame inherits the page's policy."""
    add_finding(campaign, email="abuse@isp.example", language="de", country="DE")
    batch = approved_batch(campaign, bob, rita)
    letter = Letter.objects.filter(batch=batch).first()
    assert directives(LETTER_HTML_POLICY) - directives(POLICY) == {
        "style-src 'self' 'unsafe-inline'"}
    client.force_login(bob)
    for path in (f"/c/{campaign.slug}/letters/{letter.pk}/preview/",
                 "/templates/first_notice.body.html/"):
        response = client.get(path)
        assert response["Content-Security-Policy"] == LETTER_HTML_POLICY, path
