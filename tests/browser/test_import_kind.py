"""The import page in Chromium: a two-kind campaign asks for the kind, in the page's words."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_two_kind_campaign_asks_for_the_kind_and_the_retry_imports(
    page, campaign, alice, feeds_dir
):
    login(page, "alice")
    page.goto(f"/c/{campaign.slug}/imports/new/")
    kind = page.get_by_label("Suspected of")
    expect(kind.locator("option")).to_have_text(["Choose…", "Open mail relay", "Open proxy"])
    page.get_by_label("Feed file").set_input_files(str(feeds_dir / "plain-ips.txt"))
    page.get_by_role("button", name="Start import").click()

    expect(page.locator(".field-errors")).to_have_text(
        "Say whether this feed lists open mail relays or open proxies.")
    expect(page.locator("main")).not_to_contain_text("--kind")
    screenshot(page, "import-kind-required")

    page.get_by_label("Feed file").set_input_files(str(feeds_dir / "plain-ips.txt"))
    page.get_by_label("Suspected of").select_option("relay")
    page.get_by_role("button", name="Start import").click()
    page.wait_for_url(re.compile(r"/imports/\d+/$"))
    expect(page.locator("#import-progress [data-field='status_label']")).to_have_text("Done")
