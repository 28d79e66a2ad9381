"""Postal letters in real Chromium: the batch page's print room section (download the PDF and
the address list, mark posted on a date), then the letter page (the address, posted, mark
returned); readable at desktop width and on a 390 px phone, with a Japanese letter and a
Greek address among them."""

import pytest

from letters import states
from letters.models import Letter
from tests.browser.conftest import login, screenshot
from tests.browser.test_staff_layout import too_wide
from tests.letters import conftest as letters_fixtures
from tests.letters.helpers import approved_batch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

compiled_translations = letters_fixtures.compiled_translations
agency = letters_fixtures.agency
postal_finding = letters_fixtures.postal_finding


@pytest.fixture
def approved(campaign, bob, rita, postal_finding):
    postal_finding(address="株式会社キタネット\n〒100-0001\n東京都千代田区千代田1-2-3\nJP",
                   language="ja", country="JP")
    postal_finding(address="Ελληνικά Δίκτυα Α.Ε.\nΟδός Ερμού 25\n105 63 Αθήνα\nGR",
                   language="en", country="GR")
    return approved_batch(campaign, bob, rita)


@pytest.mark.parametrize("width", [1280, 390])
def test_print_post_and_return_from_the_pages(browser, live_url, campaign, approved, bob,
                                              width):
    page = browser.new_page(base_url=live_url, viewport={"width": width, "height": 900},
                            accept_downloads=True)
    try:
        login(page, "bob")
        path = f"/c/{campaign.slug}/batches/{approved.pk}/"
        assert too_wide(page, path, width) == []
        section = page.locator("#batch-postal")
        assert "2 to print and post, 0 posted, 0 returned." in section.inner_text()
        table = page.locator("#letters").inner_text()
        assert "東京都千代田区千代田1-2-3" in table and "Οδός Ερμού 25" in table
        screenshot(page, f"batch-postal-{width}")
        with page.expect_download() as download:
            page.click("#postal-pdf")
        assert download.value.suggested_filename == f"batch-{approved.pk}-postal-letters.pdf"
        with open(download.value.path(), "rb") as pdf:
            assert pdf.read(5) == b"%PDF-"
        with page.expect_download() as download:
            page.click("#postal-csv")
        assert download.value.suggested_filename == f"batch-{approved.pk}-addresses.csv"
        page.click("#posted-form button[type=submit]")
        assert "2 postal letters marked as posted" in page.locator("body").inner_text()
        assert "0 to print and post, 2 posted" in page.locator("#batch-postal").inner_text()

        letter = Letter.objects.get(batch=approved, language="ja")
        page.goto(f"/c/{campaign.slug}/letters/{letter.pk}/")
        assert too_wide(page, f"/c/{campaign.slug}/letters/{letter.pk}/", width) == []
        facts = page.locator(".facts").inner_text()
        assert "東京都千代田区千代田1-2-3" in facts
        screenshot(page, f"letter-postal-ja-{width}")
        page.fill("#id_reason", "宛所に尋ねあたりません (addressee unknown)")
        page.click("#letter-returned button[type=submit]")
        assert "marked as returned by the post" in page.locator("body").inner_text()
        assert Letter.objects.get(pk=letter.pk).state == states.BOUNCED
        screenshot(page, f"letter-postal-returned-{width}")
    finally:
        page.close()
