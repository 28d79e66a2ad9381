"""Main staff flows in real headless Chromium against the live server."""

import re

import pytest
from playwright.sync_api import expect

from campaign import kinds, states
from campaign.models import Feed, FeedImport, Host, ImportLineIssue
from tests.browser.conftest import login, logout, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def seed_hosts(campaign) -> None:
    spread = [states.IMPORTED] * 6 + [states.VERIFIED_OPEN] * 3 + [states.NOT_OPEN] * 2 + [
        states.CONTACT_RESOLVED, states.NOTIFIED, states.REMEDIATED]
    Host.objects.bulk_create(
        Host(campaign=campaign, ip=f"11.1.0.{i + 1}", state=state, kinds=kinds.RELAY,
             country=("DE", "FR", "NL")[i % 3], asn=64500 + i)
        for i, state in enumerate(spread)
    )


@pytest.mark.parametrize(
    ("username", "role", "may_import"),
    [("alice", "analyst", True), ("bob", "staff", True), ("rita", "reviewer", False)],
)
def test_each_role_logs_in_and_sees_only_the_actions_it_may_take(
    page, campaign, username, role, may_import
):
    from tests.conftest import make_user

    make_user(username, role)
    seed_hosts(campaign)
    login(page, username)
    expect(page.get_by_role("heading", name="Campaigns", level=1)).to_be_visible()
    expect(page.get_by_role("banner")).to_contain_text(username)
    page.get_by_role("link", name=campaign.name).click()
    expect(page.get_by_role("heading", name="Funnel")).to_be_visible()
    funnel = page.locator(".funnel-step[data-step='verified_open']")
    expect(funnel).to_contain_text("6")
    expect(funnel).to_contain_text("(42.9%)")
    import_links = page.get_by_role("link", name=re.compile(r"^Import (a )?feed$"))
    if may_import:
        expect(import_links.first).to_be_visible()
    else:
        expect(import_links).to_have_count(0)
    screenshot(page, f"campaign-detail-{role}")
    logout(page)
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_a_reviewer_has_no_import_button_and_the_import_url_answers_403(page, campaign, rita):
    login(page, "rita")
    page.goto(f"/c/{campaign.slug}/")
    expect(page.get_by_role("link", name="Import a feed")).to_have_count(0)
    response = page.goto(f"/c/{campaign.slug}/imports/new/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    assert FeedImport.objects.count() == 0


def test_an_analyst_imports_a_feed_watches_it_finish_and_reads_the_rejections(
    page, campaign, alice, feeds_dir
):
    login(page, "alice")
    page.goto(f"/c/{campaign.slug}/")
    page.get_by_role("link", name="Import a feed").click()
    expect(page.get_by_role("heading", name="Import a feed")).to_be_visible()
    screenshot(page, "import-form")
    page.get_by_label("Feed file").set_input_files(str(feeds_dir / "plain-ips.txt"))
    page.get_by_label("Format").select_option("auto")
    page.get_by_label("Suspected of").select_option("relay")
    page.get_by_role("button", name="Start import").click()

    page.wait_for_url(re.compile(r"/imports/\d+/$"))
    progress = page.locator("#import-progress")
    expect(progress.locator("[data-field='status_label']")).to_have_text("Done")
    expect(progress).to_contain_text("lines=192 added=146 known=0 rejected=13")
    expect(page.get_by_role("status").first).to_contain_text("queued")
    report = page.locator("#issues")
    expect(report.locator("tr[data-line='41']")).to_contain_text("private")
    expect(report.locator("tr[data-line='41']")).to_contain_text("10.1.2.3")
    screenshot(page, "import-done")

    page.get_by_role("link", name="Hosts", exact=True).click()
    expect(page.locator("#hosts tbody tr")).to_have_count(50)
    page.get_by_role("link", name="Next →").click()
    expect(page.locator("#hosts tbody tr")).to_have_count(50)
    screenshot(page, "hosts")
    page.get_by_label("IP or network").fill("1.9.10.238")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#hosts tbody tr")).to_have_count(1)
    page.get_by_role("link", name="1.9.10.238").click()
    expect(page.locator("#sightings")).to_contain_text("plain-ips.txt")
    screenshot(page, "host-detail")


def test_the_import_page_follows_a_running_import_until_it_ends(page, campaign, alice):
    feed = Feed.objects.create(name="slow-feed.txt")
    feed_import = FeedImport.objects.create(
        campaign=campaign, feed=feed, source="slow-feed.txt", kind=kinds.RELAY,
        status=FeedImport.RUNNING, bytes_total=1000, bytes_read=300, lines=30, created_by=alice,
    )
    login(page, "alice")
    page.goto(f"/c/{campaign.slug}/imports/{feed_import.pk}/")
    box = page.locator("#import-progress")
    expect(box.locator("span[data-field='percent']")).to_have_text("30")
    expect(page.locator("#report-pending")).to_be_visible()
    screenshot(page, "import-running")

    # The worker moves on; the page must notice without anyone reloading it.
    FeedImport.objects.filter(pk=feed_import.pk).update(bytes_read=700, lines=70, added=12)
    expect(box.locator("span[data-field='percent']")).to_have_text("70")
    expect(box.locator("[data-field='added']")).to_have_text("12")

    ImportLineIssue.objects.create(feed_import=feed_import, line_no=5, content="999.1.1.1",
                                   reason="invalid", message="not an IP address")
    FeedImport.objects.filter(pk=feed_import.pk).update(
        status=FeedImport.DONE, bytes_read=1000, lines=100, added=60, known=3, rejected=1)
    expect(box).to_contain_text("lines=100 added=60 known=3 rejected=1")
    expect(page.locator("#issues tr[data-line='5']")).to_contain_text("not an IP address")


def test_keyboard_users_can_skip_to_the_content(page, campaign, alice):
    login(page, "alice")
    page.goto(f"/c/{campaign.slug}/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("#main$"))


def test_the_pages_fit_a_narrow_screen(phone_page, campaign, alice):
    seed_hosts(campaign)
    login(phone_page, "alice")
    for path, name in [
        ("/", "campaign-list-phone"),
        (f"/c/{campaign.slug}/", "campaign-detail-phone"),
        (f"/c/{campaign.slug}/hosts/", "hosts-phone"),
    ]:
        phone_page.goto(path)
        overflow = phone_page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"
        screenshot(phone_page, name)


def test_a_user_changes_their_password_and_logs_in_with_it(page, alice):
    login(page, "alice")
    page.get_by_role("link", name="Change password").click()
    page.get_by_label("Old password").fill("correct-horse-9")
    page.get_by_label(re.compile(r"^New password\W*$")).fill("battery-staple-77x")
    page.get_by_label("New password confirmation").fill("battery-staple-77x")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("heading", name="Password changed")).to_be_visible()
    logout(page)
    login(page, "alice", "battery-staple-77x")
    expect(page.get_by_role("heading", name="Campaigns", level=1)).to_be_visible()
