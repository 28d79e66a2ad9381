"""Probe runs in real headless Chromium: staff start a run over fake relays on loopback and
watch the verdicts arrive; the host page shows the evidence."""

import re

import pytest
from playwright.sync_api import expect

from campaign import kinds
from campaign.imports import create_import, run_import
from campaign.models import Host
from probes.verification.models import ProbeResult, ProbeRun
from tests import probe_fixtures
from tests.browser.conftest import login, screenshot
from tests.probe_fixtures import closed_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Fake relays on loopback and the loopback-only guard, shared with the other probe-page tests.
fake_loop = probe_fixtures.fake_loop
loopback_only = probe_fixtures.loopback_only
lab_settings = probe_fixtures.lab_settings
smtp_fake = probe_fixtures.smtp_fake


@pytest.fixture
def lab_hosts(campaign, smtp_fake, tmp_path):
    """An open relay, a closed one and a dead port on 127.0.0.x, imported from an ip:port feed
    (loopback is reserved space: only the lab allowlist lets the import accept it)."""
    open_relay = smtp_fake("127.0.0.51", open_relay=True)
    closed_relay = smtp_fake("127.0.0.52", open_relay=False)
    feed = tmp_path / "lab-relays.txt"
    feed.write_text(f"127.0.0.51:{open_relay.port}\n127.0.0.52:{closed_relay.port}\n"
                    f"127.0.0.53:{closed_port('127.0.0.53')}\n")
    feed_import = run_import(
        create_import(campaign=campaign, source=str(feed), fmt="ipport", kind="relay").pk)
    assert (feed_import.added, feed_import.rejected) == (3, 0)
    return {"open": open_relay, "closed": closed_relay}


def test_staff_start_a_probe_run_and_see_the_verdicts(page, campaign, bob, lab_hosts,
                                                      loopback_only):
    login(page, "bob")
    page.goto(f"/c/{campaign.slug}/")
    probes = page.locator("#probe-runs")
    expect(probes).to_contain_text("No probe run yet")
    probes.get_by_label("Hosts in state").select_option("imported")
    probes.get_by_role("button", name="Start probe run").click()

    page.wait_for_url(re.compile(r"/probes/\d+/$"))
    expect(page.get_by_role("heading", name=re.compile(r"^Probe run #\d+$"))).to_be_visible()
    box = page.locator("#probe-progress")
    expect(box.locator("[data-field='status_label']")).to_have_text("Done")
    expect(box).to_contain_text("3 of 3 hosts probed")
    expect(box.locator("[data-field='by_verdict.open']")).to_have_text("1")
    expect(box.locator("[data-field='by_verdict.not_open']")).to_have_text("1")
    expect(box.locator("[data-field='by_verdict.unreachable']")).to_have_text("1")
    results = page.locator("#results")
    expect(results.locator("tr[data-ip='127.0.0.51'] .verdict")).to_have_text("Open")
    expect(results.locator("tr[data-ip='127.0.0.51']")).to_contain_text("plain")
    expect(results.locator("tr[data-ip='127.0.0.52'] .verdict")).to_have_text("Not open")
    expect(results.locator("tr[data-ip='127.0.0.53'] .verdict")).to_have_text("Unreachable")
    screenshot(page, "probe-run-done")
    assert {host for host, _port in loopback_only} == {"127.0.0.51", "127.0.0.52", "127.0.0.53"}

    by_verdict = page.get_by_role("navigation", name="Results by verdict")
    by_verdict.get_by_role("link", name="Open", exact=True).click()
    expect(page.locator("#results tbody tr")).to_have_count(1)
    page.get_by_role("link", name="127.0.0.51").click()
    expect(page.get_by_role("heading", name="127.0.0.51")).to_be_visible()
    probe = page.locator("#probes li.probe").first
    expect(probe.locator(".verdict")).to_have_text("Open")
    expect(probe).to_contain_text(f"on port {lab_hosts['open'].port}")
    transcript = probe.locator("pre.transcript")
    expect(transcript).to_be_hidden()
    probe.get_by_text(re.compile(r"^Transcript of SMTP relay")).click()
    expect(transcript).to_be_visible()
    expect(transcript).to_contain_text("RCPT TO:<")
    expect(transcript).to_contain_text("250")
    screenshot(page, "host-probes")

    page.get_by_role("link", name=campaign.name).first.click()
    latest = page.locator("#latest-probe-run")
    expect(latest).to_contain_text("probed=3 open=1 not_open=1 unreachable=1 error=0")
    funnel = page.locator(".funnel-step[data-step='verified_open']")
    expect(funnel).to_contain_text("1")
    screenshot(page, "campaign-detail-probes")


def test_a_reviewer_may_watch_a_run_but_has_no_start_button(page, campaign, rita):
    run = ProbeRun.objects.create(campaign=campaign, status=ProbeRun.DONE)
    login(page, "rita")
    page.goto(f"/c/{campaign.slug}/")
    expect(page.locator("#probe-runs")).to_be_visible()
    expect(page.get_by_role("button", name="Start probe run")).to_have_count(0)
    assert page.goto(f"/c/{campaign.slug}/probes/{run.pk}/").status == 200
    response = page.goto(f"/c/{campaign.slug}/probes/new/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


def test_the_run_page_follows_a_running_run_until_it_ends(page, campaign, alice):
    hosts = Host.objects.bulk_create(
        Host(campaign=campaign, ip=f"11.2.0.{i}", kinds=kinds.RELAY) for i in range(1, 5))
    run = ProbeRun.objects.create(campaign=campaign, status=ProbeRun.RUNNING, total=4, done=1,
                                  open_count=1, host_ids=[h.pk for h in hosts])
    login(page, "alice")
    page.goto(f"/c/{campaign.slug}/probes/{run.pk}/")
    box = page.locator("#probe-progress")
    expect(box.locator("[data-field='status_label']")).to_have_text("Running")
    expect(box.locator("span[data-field='percent']")).to_have_text("25")
    expect(page.locator("#results-pending")).to_be_visible()
    screenshot(page, "probe-run-running")

    # The workers move on; the page must notice without anyone reloading it.
    ProbeRun.objects.filter(pk=run.pk).update(done=3, not_open_count=1, unreachable_count=1)
    expect(box.locator("span[data-field='percent']")).to_have_text("75")
    expect(box.locator("[data-field='by_verdict.unreachable']")).to_have_text("1")
    expect(box.locator("[data-field='summary']")).to_have_text(
        "probed=3 open=1 not_open=1 unreachable=1 error=0")

    ProbeResult.objects.bulk_create(
        ProbeResult(run=run, host=h, check_name="smtp_relay", port=25, verdict=v)
        for h, v in zip(hosts, ["open", "not_open", "unreachable", "error"], strict=True))
    ProbeRun.objects.filter(pk=run.pk).update(status=ProbeRun.DONE, done=4, error_count=1)
    # Finished: the page reloads once and the server renders the results.
    expect(page.locator("#results tbody tr")).to_have_count(4)
    expect(box.locator("[data-field='status_label']")).to_have_text("Done")
    expect(page.locator("#results tr[data-ip='11.2.0.4'] .verdict")).to_have_text("Error")


def test_the_probe_pages_fit_a_narrow_screen(phone_page, campaign, alice):
    host = Host.objects.create(campaign=campaign, ip="11.3.0.1", kinds=kinds.RELAY)
    run = ProbeRun.objects.create(campaign=campaign, status=ProbeRun.DONE, total=1, done=1,
                                  open_count=1, host_ids=[host.pk])
    long_line = "S: 250-" + "X" * 300
    ProbeResult.objects.create(run=run, host=host, check_name="smtp_relay", port=25,
                               verdict="open", variant="percent_hack",
                               transcript=f"{long_line}\nC: RCPT TO:<a%b@[11.3.0.1]>\n")
    login(phone_page, "alice")
    phone_page.goto(f"/c/{campaign.slug}/hosts/{host.ip}/")
    phone_page.get_by_text("Transcript of SMTP relay on port 25").click()
    for path, name in [
        (None, "host-probes-phone"),
        (f"/c/{campaign.slug}/probes/{run.pk}/", "probe-run-phone"),
        (f"/c/{campaign.slug}/", "campaign-detail-probes-phone"),
    ]:
        if path:
            phone_page.goto(path)
        overflow = phone_page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path or 'host page'} scrolls sideways by {overflow}px"
        screenshot(phone_page, name)
