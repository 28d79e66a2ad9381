"""What came back, on the letter's page in real Chromium: a Japanese letter's bounce (with
its DSN status and what it did), a Bulgarian reply in Cyrillic, an auto-reply; readable at
desktop width and on a 390 px phone."""

import pytest

from letters import sending
from letters.inbound.receive import receive_raw
from letters.models import Letter
from tests.browser.conftest import login, screenshot
from tests.browser.test_staff_layout import too_wide
from tests.letters import conftest as letters_fixtures
from tests.letters.helpers import approved_batch
from tests.letters.test_inbound_classify import gmail_bounce

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

compiled_translations = letters_fixtures.compiled_translations
agency = letters_fixtures.agency
finding = letters_fixtures.finding


@pytest.fixture
def came_back(campaign, bob, rita, finding):
    finding(email="noc@isp.jp.example", language="ja", country="JP")
    finding(email="abuse@isp.bg.example", language="bg", country="BG")
    sending.send_batch(batch=approved_batch(campaign, bob, rita))
    ja = Letter.objects.get(email="noc@isp.jp.example")
    bg = Letter.objects.get(email="abuse@isp.bg.example")
    receive_raw(gmail_bounce(ja.idempotency_key, ja.email).encode(), source="pipe")
    receive_raw((f"From: =?utf-8?b?0JjQstCw0L0=?= <{bg.email}>\n"
                 "Subject: =?utf-8?b?0J7RgtCz0L7QstC+0YA6INC30LDRgtCy0L7RgNC10L3Qvg==?=\n"
                 f"In-Reply-To: {bg.message_id}\nContent-Type: text/plain; charset=utf-8\n"
                 "Content-Transfer-Encoding: 8bit\n\n"
                 "Здравейте, затворихме релето. Благодаря!\n").encode(), source="pipe")
    receive_raw((f"From: <{bg.email}>\nSubject: Automatic reply\nAuto-Submitted: "
                 f"auto-replied\nIn-Reply-To: {bg.message_id}\n\nAway.\n").encode(),
                source="imap")
    return campaign, ja, bg


@pytest.mark.parametrize("width", [1280, 390])
def test_what_came_back_reads_well_on_the_letter_page(browser, live_url, came_back, bob, width):
    campaign, ja, bg = came_back
    page = browser.new_page(base_url=live_url, viewport={"width": width, "height": 900})
    try:
        login(page, "bob")
        for letter, name in ((ja, "bounce-ja"), (bg, "reply-bg")):
            path = f"/c/{campaign.slug}/letters/{letter.pk}/"
            assert too_wide(page, path, width) == []  # loads the page too
            assert page.locator("#replies").is_visible()
            screenshot(page, f"letter-came-back-{name}-{width}")
        text = page.locator("#replies").inner_text()
        assert "Здравейте, затворихме релето" in text and "Auto-reply" in text
        page.goto(f"/c/{campaign.slug}/letters/{ja.pk}/")
        bounce = page.locator("#replies").inner_text()
        assert "Bounce" in bounce and "5.1.1" in bounce and "address gone" in bounce
    finally:
        page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_deliverability_page_reads_well(browser, live_url, came_back, bob, width):
    campaign, _ja, _bg = came_back
    page = browser.new_page(base_url=live_url, viewport={"width": width, "height": 900})
    try:
        login(page, "bob")
        path = f"/c/{campaign.slug}/deliverability/"
        assert too_wide(page, path, width) == []
        counts = page.locator("#deliverability-counts").inner_text().upper()  # CSS caps
        assert "BOUNCED FOR GOOD\n1" in counts and "REPLIES FROM PEOPLE\n1" in counts
        assert "AUTO-REPLIES\n1" in counts and "HOSTS GIVEN A FALLBACK CONTACT\n1" in counts
        screenshot(page, f"deliverability-{width}")
    finally:
        page.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_host_page_shows_the_fallback_chain_and_postal_address(browser, live_url, campaign,
                                                                  bob, rita, finding, width):
    from probes.contacts.models import Contact
    from tests.letters.test_fallback import ARIN, network_from

    host = finding(email="abuse@harborline-comms.example", country="US", ip="99.232.84.14")
    Contact.objects.filter(host=host).update(
        network=network_from(ARIN, start="99.232.0.0", end="99.232.127.255"))
    for _ in range(3):
        sending.send_batch(batch=approved_batch(campaign, bob, rita))
        letter = Letter.objects.order_by("-id").first()
        receive_raw(gmail_bounce(letter.idempotency_key, letter.email).encode(),
                    source="pipe")
    page = browser.new_page(base_url=live_url, viewport={"width": width, "height": 900})
    try:
        login(page, "bob")
        path = f"/c/{campaign.slug}/hosts/{host.ip}/"
        assert too_wide(page, path, width) == []
        page.locator('[data-field="contact-fallbacks"] summary').click()
        chain = page.locator('[data-field="contact-fallbacks"]').inner_text()
        assert "noc@harborline-comms.example" in chain and "postal letter" in chain
        assert "4100 Pier Avenue" in page.locator('[data-field="contact-postal"]').inner_text()
        page.locator("#contact").scroll_into_view_if_needed()
        screenshot(page, f"host-fallback-chain-{width}")
    finally:
        page.close()
