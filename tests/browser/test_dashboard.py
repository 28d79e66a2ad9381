"""The dashboard's charts and the letter-template editor's live preview, in real Chromium."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from campaign import kinds, states
from campaign.models import Host
from letters.models import Batch, Letter, LetterHost, LetterTemplate
from tests.browser.conftest import login, screenshot
from tests.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def seed(campaign, builder) -> None:
    now = dt.datetime.now(dt.UTC)
    spread = ([states.IMPORTED] * 5 + [states.VERIFIED_OPEN] * 3 + [states.NOTIFIED] * 4
              + [states.REMEDIATED] * 3)
    hosts = Host.objects.bulk_create(
        Host(campaign=campaign, ip=f"11.2.0.{i + 1}", state=state, kinds=kinds.RELAY,
             country=("DE", "FR", "NL", "BR")[i % 4],
             remediated_at=now - dt.timedelta(days=i) if state == states.REMEDIATED else None)
        for i, state in enumerate(spread)
    )
    batch = Batch.objects.create(campaign=campaign, created_by=builder, state="sent")
    for i, host in enumerate(hosts[8:]):
        letter = Letter.objects.create(
            batch=batch, campaign=campaign, state="delivered", email=f"abuse{i}@example.net",
            subject="s", body_text="t", body_html="<p>h</p>",
            sent_at=now - dt.timedelta(days=i % 3))
        LetterHost.objects.create(letter=letter, host=host)


def test_the_dashboard_draws_its_charts_beside_their_data_tables(page, phone_page, campaign):
    bob = make_user("bob", "staff")
    seed(campaign, bob)
    login(page, "bob")
    page.goto(f"/c/{campaign.slug}/")
    expect(page.get_by_role("heading", name="Funnel")).to_be_visible()
    for step, count in (("imported", "15"), ("sent", "7"), ("delivered", "7"),
                        ("remediated", "3")):
        expect(page.locator(f".funnel-step[data-step='{step}'] strong")).to_have_text(count)
    # Chart.js, served from static/vendor, drew every chart onto its canvas.
    charts = page.locator("canvas[data-chart]")
    expect(charts).to_have_count(3)
    for kind in ("sent", "remediated", "countries"):
        expect(page.locator(f"canvas[data-chart='{kind}'][data-drawn='true']")).to_have_count(1)
    assert page.evaluate("typeof window.Chart") == "function"
    assert page.evaluate(
        "Chart.getChart(document.querySelector(\"canvas[data-chart='sent']\"))"
        ".data.datasets[0].data.reduce((a, b) => a + b, 0)") == 7
    assert page.evaluate(
        "Chart.getChart(document.querySelector(\"canvas[data-chart='countries']\"))"
        ".data.labels") == ["DE", "FR", "NL", "BR"]  # most hosts first
    # The numbers are there for everyone: the country table is open, the daily ones a click away.
    countries = page.get_by_role("table", name="Hosts by country and state")
    expect(countries.locator("tr[data-country='DE'] td").first).to_have_text("4")
    page.locator("#chart-sent summary").click()
    expect(page.get_by_role("table", name="Letters sent per day, last 60 days")).to_be_visible()
    expect(page.locator("#open-work")).to_contain_text("Nothing running")
    path = screenshot(page, "dashboard-charts")
    assert path.stat().st_size > 20_000

    login(phone_page, "bob")
    phone_page.goto(f"/c/{campaign.slug}/")
    expect(phone_page.locator("canvas[data-chart='countries'][data-drawn='true']")).to_have_count(1)
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1  # no sideways scrolling on a phone
    screenshot(phone_page, "dashboard-charts-phone")


def test_the_template_editor_previews_a_draft_as_it_is_typed(page, agency, live_url):
    make_user("ada", "admin", agency_name=agency.name)
    login(page, "ada")
    page.get_by_role("link", name="Agencies & templates").click()
    expect(page.get_by_role("heading", name="Agencies and templates", level=1)).to_be_visible()
    page.get_by_role("link", name="first_notice.subject.txt").click()
    expect(page.locator("#preview-subject")).not_to_be_empty()

    source = page.get_by_label("Template source")
    source.fill("Live preview for {{ agency.name }}: {{ ips }}")
    expect(page.locator("#preview-subject")).to_have_text(
        "Live preview for Federal Trade Commission: 192.0.2.25, 192.0.2.80")
    expect(page.locator("#preview-status")).to_have_text("Preview updated.")

    # An injection attempt: shown as an error, the last good preview stays, nothing saved.
    source.fill("{{ ''.__class__.__mro__ }}")
    error = page.locator("#preview-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Not allowed in a letter template")
    screenshot(page, "template-editor-error")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".field-errors")).to_contain_text("Not allowed in a letter template")
    assert not LetterTemplate.objects.exists()

    # The HTML body: the sandboxed iframe shows the draft as the recipient would see it.
    page.goto("/templates/first_notice.body.html/")
    frame = page.frame_locator("#preview-frame")
    expect(frame.locator("body")).to_contain_text("192.0.2.25")
    page.get_by_label("Template source").fill(
        "<p>Dear operator of {% for h in hosts %}<b>{{ h.ip }}</b> {% endfor %}</p>"
        "<script>parent.document.title = 'escaped'</script>")
    expect(frame.locator("b").first).to_have_text("192.0.2.25")
    assert page.title() != "escaped"  # sandbox="" runs no script
    screenshot(page, "template-editor")
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_role("status")).to_contain_text("Template first_notice.body.html saved.")
    assert "<b>{{ h.ip }}</b>" in LetterTemplate.objects.get(name="first_notice.body.html").source
