"""The recipient's page in real headless Chromium: each letter's link opens a page in the
letter's language showing that letter's hosts only; the page runs under its strict CSP (no
console errors, the progress script works); and "Test my server again now" flips a relay on
loopback that its owner closed in between to remediated."""

import os
import uuid
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from campaign import states as host_states
from campaign.models import AuditEvent
from letters import retest, sending
from letters.models import Letter
from tests.browser.conftest import screenshot
from tests.letters import conftest as letters_fixtures
from tests.letters.helpers import approved_batch
from tests.letters.test_followup import listed_relay
from tests.probes import conftest as probe_fixtures
from tests.probes import fakes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

compiled_translations = letters_fixtures.compiled_translations
agency = letters_fixtures.agency
# Fake relays on loopback, the canary, and the guard that every connection stays on loopback.
loop = probe_fixtures.loop
canary = probe_fixtures.canary
fake = probe_fixtures.fake
probe_settings = probe_fixtures.probe_settings
connections = probe_fixtures.connections

HEADINGS = {
    "en": "Your servers and what we found",
    "ja": "お客様のサーバーと検出内容",
    "de": "Ihre Server und unsere Feststellungen",
}
RETEST_BUTTON = {"en": "Test my server again now", "ja": "今すぐサーバーを再テストする",
                 "de": "Server jetzt erneut testen"}


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }}


@pytest.fixture
def owners(campaign, bob, rita, fake, probe_settings):
    """Three owners, one open relay each on loopback, written to in en, ja and de."""
    relays, hosts = {}, {}
    for n, (lang, country) in enumerate((("en", "US"), ("ja", "JP"), ("de", "DE")), 1):
        ip = f"127.0.0.{70 + n}"
        relays[lang] = fake(fakes.smtp_server, host=ip, rcpt=fakes.relay_everything)
        hosts[lang] = listed_relay(campaign, ip, relays[lang].port,
                                   email=f"noc@{lang}.example", language=lang, country=country)
    assert sending.send_batch(batch=approved_batch(campaign, bob, rita)).sent == 3
    letters = {lang: Letter.objects.get(email=f"noc@{lang}.example") for lang in hosts}
    return relays, hosts, letters


def path_of(letter: Letter) -> str:
    return urlsplit(letter.context["recipient_url"]).path


def watch_console(page) -> list[str]:
    """Script errors, CSP violations and failed loads (the browser's own favicon guess aside)."""
    errors: list[str] = []

    def on_console(msg) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    def on_response(response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico") and (
                "/static/" in response.url):
            errors.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", on_response)
    page.on("requestfailed", lambda request: errors.append(f"failed {request.url}"))
    return errors


def test_each_letters_page_renders_in_its_language_with_its_hosts_only(page, owners):
    _, hosts, letters = owners
    errors = watch_console(page)
    for lang, letter in letters.items():
        response = page.goto(path_of(letter))
        assert response.status == 200
        assert "default-src 'none'" in response.headers["content-security-policy"]
        expect(page.locator("html")).to_have_attribute("lang", lang)
        expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS[lang])
        expect(page.get_by_role("button", name=RETEST_BUTTON[lang])).to_be_visible()
        found = page.locator("#found")
        expect(found).to_contain_text(hosts[lang].ip)
        for other, host in hosts.items():
            if other != lang:
                expect(page.locator("body")).not_to_contain_text(host.ip)
        # The instructions, the six questions and the abuse@ advice are all there.
        expect(page.locator("#close summary")).to_have_count(9)
        expect(page.locator("#self-check li")).to_have_count(6)
        expect(page.locator("#abuse")).to_contain_text("abuse@")
        screenshot(page, f"recipient-page-{lang}")
    # The stylesheet and the script loaded under the CSP; nothing was blocked.
    assert errors == []


def test_a_tampered_link_shows_the_same_page_as_an_unknown_one(page, owners):
    _, _, letters = owners
    path = path_of(letters["en"])
    tampered = page.goto(path[:-3] + ("x/" if path[-3] != "x" else "y/"))
    assert tampered.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "This link is not valid or has expired")
    screenshot(page, "recipient-page-invalid")


def test_a_retest_flips_a_relay_closed_in_between_to_remediated(page, owners, connections):
    relays, hosts, letters = owners
    errors = watch_console(page)
    page.goto(path_of(letters["de"]))
    # Still open: the page says so and the host stays notified.
    page.get_by_role("button", name=RETEST_BUTTON["de"]).click()
    expect(page.locator("#retest-result")).to_contain_text("Noch offen")
    hosts["de"].refresh_from_db()
    assert hosts["de"].state == host_states.NOTIFIED

    # The owner closes the relay, then tests again.
    relays["de"].options["rcpt"] = fakes.relay_nothing
    page.get_by_role("button", name=RETEST_BUTTON["de"]).click()
    expect(page.locator("#retest-result")).to_contain_text(
        "Vielen Dank, dass Sie sie gesichert haben")
    expect(page.locator(f"[data-ip='{hosts['de'].ip}'] .r-badge")).to_have_attribute(
        "data-state", "remediated")
    expect(page.get_by_role("button", name=RETEST_BUTTON["de"])).to_have_count(0)
    screenshot(page, "recipient-page-retest-remediated")
    hosts["de"].refresh_from_db()
    assert hosts["de"].state == host_states.REMEDIATED
    event = AuditEvent.objects.get(action="host.self_service_remediated")
    assert event.data["self_reported"] and event.data["verified"]
    # Only the de letter's relay was probed; the others were never contacted.
    probed = {host for host, _ in connections}
    assert hosts["de"].ip in probed
    assert not probed & {hosts["en"].ip, hosts["ja"].ip}
    for other in ("en", "ja"):
        hosts[other].refresh_from_db()
        assert hosts[other].state == host_states.NOTIFIED
    assert errors == []


def test_the_progress_script_follows_a_running_retest_until_it_ends(page, campaign, owners):
    from campaign.audit import record
    from probes.verification.models import ProbeRun

    _, hosts, letters = owners
    letter = letters["ja"]
    run = ProbeRun.objects.create(campaign=campaign, status=ProbeRun.RUNNING,
                                  host_ids=[hosts["ja"].pk], total=1,
                                  reason=retest.SELF_SERVICE)
    record(retest.RETEST_ACTION, campaign_id=campaign.pk, obj=letter, data={"run": run.pk})
    errors = watch_console(page)
    page.goto(f"{path_of(letter)}?run={run.pk}")
    expect(page.locator("#retest-progress")).to_contain_text("テスト実行中")
    screenshot(page, "recipient-page-retest-running")
    ProbeRun.objects.filter(pk=run.pk).update(status=ProbeRun.DONE, done=1)
    # The script polls the JSON, sees the run finished and reloads into the result.
    expect(page.locator("#retest-result")).to_be_visible(timeout=15_000)
    expect(page.locator("#retest-progress")).to_have_count(0)
    assert errors == []


def test_at_390_px_the_page_fits_and_its_form_controls_are_styled(page, owners):
    """A phone: nothing wider than the screen; the language select and the time-zone field
    look like the text areas (border, padding, full width), the zone suggested is the
    contact's country's, the questions are the relay ones, and the re-test result is said
    once."""
    _, hosts, letters = owners
    errors = watch_console(page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(path_of(letters["ja"]))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator("#time-zone")).to_have_attribute("placeholder", "Asia/Tokyo")
    styles = page.evaluate("""() => ['#letter-language', '#time-zone', '#message-text']
        .map(sel => { const s = getComputedStyle(document.querySelector(sel));
                      const r = document.querySelector(sel).getBoundingClientRect();
                      return [s.borderTopWidth, s.borderTopColor, s.borderTopLeftRadius,
                              s.paddingLeft, s.fontSize, Math.round(r.width)]; })""")
    select, zone, textarea = styles
    assert select == textarea and zone == textarea, styles
    expect(page.locator("#self-check li")).to_have_count(6)
    expect(page.locator("#self-check [data-kind='relay']")).to_be_visible()
    expect(page.locator("#self-check [data-kind='proxy']")).to_have_count(0)
    expect(page.locator("#found .r-evidence")).not_to_contain_text("(plain)")
    screenshot(page, "recipient-page-390-ja")
    page.get_by_role("button", name=RETEST_BUTTON["ja"]).click()
    expect(page.locator("#retest-result li")).to_have_count(1)
    result = page.locator("#retest-result").inner_text()
    assert result.count("まだ開放されています") == 1, result  # the list only, no summary line
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "recipient-page-390-ja-retest")
    assert errors == []
