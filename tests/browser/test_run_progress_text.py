"""A running probe run's page says one thing about its progress, live (issue 14, point 14).

The results list is rendered once, the progress box follows the run's status JSON: the text
under "Results" must follow the same count, not claim "no host has finished yet" while the
box above says 203 of 204.
"""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaign import kinds
from campaign.models import Host
from probes.verification.models import ProbeResult, ProbeRun
from tests.browser.conftest import login
from tests.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_pending_results_text_follows_the_live_count(page, campaign):
    make_user("bob", "staff")
    hosts = [Host.objects.create(campaign=campaign, ip=f"11.3.0.{i}", kinds=kinds.RELAY)
             for i in (1, 2)]
    run = ProbeRun.objects.create(campaign=campaign, status=ProbeRun.RUNNING, total=2,
                                  host_ids=[h.pk for h in hosts], started_at=timezone.now())
    login(page, "bob")
    page.goto(f"/c/{campaign.slug}/probes/{run.pk}/")
    pending = page.locator("#results-pending")
    expect(pending).to_contain_text("0 of 2 hosts probed so far")

    # A worker finishes one host while the page is open (as services.record_host_outcome does).
    ProbeResult.objects.create(run=run, host=hosts[0], check_name="smtp_relay", port=25,
                               verdict="not_open")
    ProbeRun.objects.filter(pk=run.pk).update(done=1, checks_done=1, not_open_count=1)
    box = page.locator("#probe-progress")
    expect(box).to_contain_text("1 of 2 hosts probed")
    expect(pending).to_contain_text("1 of 2 hosts probed so far")
    expect(pending).not_to_contain_text("No host has finished")
    assert page.locator("#results-pending [data-field='done']").inner_text() == \
        box.locator("[data-field='done']").first.inner_text()
