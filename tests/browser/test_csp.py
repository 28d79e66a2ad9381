"""The staff CSP (campaign/csp.py) in real Chromium: no page breaks under it.

Chromium reports every refused script, style or resource on the console ("Refused to … because
it violates the following Content Security Policy directive"). Each page is loaded, its
scripts given time to run (charts drawn, previews fetched), and the console must hold no such
line.
"""

import pytest

from letters.models import Letter
from tests.browser.conftest import login
from tests.letters import conftest as letters_fixtures
from tests.letters.helpers import approved_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

compiled_translations = letters_fixtures.compiled_translations
agency = letters_fixtures.agency
finding = letters_fixtures.finding


def csp_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if "Content Security Policy" in message.text else None)
    return errors


def test_no_staff_or_admin_page_violates_the_csp(page, campaign, bob, rita, finding):
    from tests.conftest import make_user

    make_user("ada", "admin")
    host = finding(email="abuse@isp.example", language="de", country="DE")
    batch = approved_batch(campaign, bob, rita)
    letter = Letter.objects.filter(batch=batch).first()
    errors = csp_errors(page)

    response = page.goto("/login/")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    login(page, "ada")
    slug = campaign.slug
    pages = [
        "/", f"/c/{slug}/", f"/c/{slug}/hosts/", f"/c/{slug}/hosts/{host.ip}/",
        f"/c/{slug}/batches/{batch.pk}/", f"/c/{slug}/letters/{letter.pk}/",
        f"/c/{slug}/letters/{letter.pk}/preview/",
        f"/c/{slug}/letters/", f"/c/{slug}/imports/new/", "/templates/first_notice.body.html/",
        "/suppressions/", "/review/",
        "/admin/", "/admin/campaign/campaign/", f"/admin/campaign/campaign/{campaign.pk}/change/",
    ]
    for path in pages:
        response = page.goto(path)
        assert response.status < 400, (path, response.status)
        policy = response.headers["content-security-policy"]
        assert policy.startswith("default-src 'self'") and "script-src 'self';" in policy, path
        page.wait_for_load_state("networkidle")
        assert not errors, (path, errors)
