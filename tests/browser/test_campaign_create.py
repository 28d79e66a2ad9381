"""The "New campaign" page in real headless Chromium, from the campaign list."""

import re

import pytest
from playwright.sync_api import expect

from campaign.models import Agency, Campaign
from tests.browser.conftest import login, screenshot
from tests.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_creates_a_campaign_from_the_campaign_list(page, phone_page):
    Agency.objects.create(name="Federal Trade Commission", country="US")
    make_user("ada", "admin", "Federal Trade Commission")
    login(page, "ada")
    page.get_by_role("link", name="New campaign").click()
    expect(page.get_by_role("heading", name="New campaign", level=1)).to_be_visible()
    expect(page.get_by_text("led by Federal Trade Commission")).to_be_visible()
    page.get_by_label("Short name").fill("Not a slug!")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.locator(".field-errors")).to_be_visible()  # refused, the form stays
    page.get_by_label("Short name").fill("oss-2027")
    page.get_by_label("Title").fill("Operation Secure Your Server 2027")
    page.get_by_label("Looking for").select_option("relay")
    screenshot(page, "campaign-create")
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(re.compile(r"/c/oss-2027/$"))
    expect(page.get_by_role("heading", name="Operation Secure Your Server 2027")).to_be_visible()
    expect(page.get_by_text("Campaign Operation Secure Your Server 2027 created.")).to_be_visible()
    assert Campaign.objects.get(slug="oss-2027").agency.name == "Federal Trade Commission"
    # The page fits a phone.
    login(phone_page, "ada")
    phone_page.goto("/campaigns/new/")
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
