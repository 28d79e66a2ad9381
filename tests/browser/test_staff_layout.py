"""Every staff page fits a phone: no sideways scrolling at 390 px, nor at 1280 px.

The pages come from the access matrix (tests/test_access_matrix.py), which names every URL of
the site and is checked against the URL resolver, so a new page is measured here as soon as it
is added there. Each role visits every page it may see, on its seeded objects (a batch, a
letter, a host, an import, a probe and a contact run), plus data that stretches a layout: an
IPv6 host, a long feed name and source URL, a long address, a reply. A wide table may scroll
inside its own `.table-wrap`; the page itself may not. A screenshot of each page at both widths
goes to test-artifacts/screenshots/ for a person to look at.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from campaign.models import Feed, ImportLineIssue
from letters.models import InboundMessage, Letter
from tests.browser.conftest import DESKTOP, PHONE, _new_page, login, screenshot
from tests.letters.conftest import add_finding
from tests.test_access_matrix import (
    LOGGED_IN,
    PUBLIC,
    ROLES,
    allowed,
    compiled_translations,
    rows,
    world,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

__all__ = ["compiled_translations", "world"]  # fixtures, used by name

# Elements wider than the viewport that are not inside a scrolling container: what to fix
# when a page does not fit (shown in the failure message).
CULPRITS = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll" || o === "hidden") return true;
    }
    return false;
  };
  return [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > width + 1 && !scrolls(el))
    .slice(0, 8)
    .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
         + (el.className && typeof el.className === "string" ? "." + el.className : "")
         + " right=" + Math.round(el.getBoundingClientRect().right));
}"""

JSON_PAGES = {"import_status", "probe_run_status", "contact_run_status", "batch_status",
              # downloads, not pages: a printed letter (tests/letters/test_postal_pdf.py)
              "letter_pdf"}


@pytest.fixture
def site(world):
    """The access matrix's objects, plus long values that stretch a page."""
    w = world
    add_finding(w.campaign, email="abuse-department-for-network-operations@"
                "very-long-internet-service-provider-name.example", country="BR",
                language="pt-BR", ip="2001:db8:ffff:abcd:1234:5678:9abc:def0")
    long_import = w.feed_import  # the import whose page the matrix visits
    long_import.feed = Feed.objects.create(
        name="shadowserver-scan-open-proxy-daily-report-2026-12-02")
    long_import.source = ("https://feeds.example.org/shadowserver/reports/2026/12/02/"
                          "scan_http_proxy_and_socks_open-cn-and-elsewhere.csv")
    long_import.lines, long_import.added, long_import.known, long_import.rejected = 204, 200, 3, 1
    long_import.save()
    ImportLineIssue.objects.create(
        feed_import=long_import, line_no=17, rejected=True, reason="reserved",
        content="2001:db8:ffff:abcd:1234:5678:9abc:def1,8080,http-proxy,"
                "very-long-tag-column-with-no-spaces-at-all-in-it",
        message="2001:db8:ffff:abcd:1234:5678:9abc:def1 is in a reserved range")
    sent = Letter.objects.exclude(pk=w.letter.pk).get(batch=w.batch)
    InboundMessage.objects.create(
        letter=sent, esp="Mailgun", from_email="postmaster-and-abuse@isp.us.example",
        subject="Re: Your server 198.51.0.2 is an open mail relay — we closed it yesterday",
        text="Thanks, we have closed it.\n" + "x" * 200)
    w.campaign.name = "Operation Secure Your Server 2026 (joint outreach campaign)"
    w.campaign.save(update_fields=["name"])
    return w


def staff_pages(w) -> list[tuple[str, str, str]]:
    """(url name, permission, path) of every staff page a GET shows as HTML."""
    pages = []
    for row in rows(w):
        if row.method != "get" or row.ok != 200 or row.name in JSON_PAGES:
            continue
        if row.perm == PUBLIC and row.name != "login":
            continue  # the recipient's pages: tests/browser/test_recipient_page.py
        pages.append((row.name, row, reverse(row.name, args=row.args)))
    return pages


def too_wide(page, path: str, width: int) -> list:
    """[] if the page at `path` fits `width`, else what sticks out."""
    response = page.goto(path)
    assert response is not None and response.status == 200, (path, response and response.status)
    scroll = page.evaluate("document.documentElement.scrollWidth")
    return [] if scroll <= width else [(path, width, scroll, page.evaluate(CULPRITS))]


@pytest.mark.parametrize("role", ROLES)
def test_every_staff_page_fits_a_phone_and_a_desktop(browser, live_url, site, role):
    pages = [(name, path) for name, row, path in staff_pages(site)
             if row.perm in (PUBLIC, LOGGED_IN) or allowed(role, row)]
    # Every page the matrix lists for the role (the number only grows as pages are added).
    assert len(pages) >= {"analyst": 19, "staff": 21, "reviewer": 16, "admin": 24}[role]
    # Screenshots from the role that sees the most (an admin); the others are measured.
    shoot = role == "admin"
    wide = []
    for viewport in (PHONE, DESKTOP):
        page = _new_page(browser, live_url, viewport)
        try:
            width = viewport["width"]
            wide += too_wide(page, "/login/", width)
            if shoot:
                screenshot(page, f"staff-login-{width}")
            login(page, site.users[role].username)
            for name, path in pages:
                if name == "login":
                    continue  # signed in, it sends the user on
                wide += too_wide(page, path, width)
                if shoot:
                    screenshot(page, f"staff-{name}-{width}")
        finally:
            page.context.close()
    assert wide == []
