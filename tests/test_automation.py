"""The campaign's automation policy: off by default; each switch makes the system take one
step by itself, audited as the system's; review and approval stay with people."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from campaign import states
from campaign.automation import set_policy
from campaign.models import AuditEvent, Host
from letters import batches
from letters.errors import FourEyesViolation
from letters.models import Batch
from probes.verification import services as probe_services
from probes.verification.models import ProbeResult, ProbeRun
from tests.conftest import make_user
from tests.letters import conftest as letters_fixtures
from tests.letters.conftest import add_finding

pytestmark = pytest.mark.django_db

compiled_translations = letters_fixtures.compiled_translations


def automation(*args: str) -> str:
    out = io.StringIO()
    call_command("campaign_automation", *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_everything_is_off_by_default_and_only_an_admin_turns_it_on(campaign):
    make_user("ana", "analyst")
    make_user("adm", "admin")
    assert automation(campaign.slug) == "probe_new=off contacts=off daily_batches=off"
    with pytest.raises(CommandError, match="may not change the campaign's automation"):
        automation(campaign.slug, "--probe-new", "--by", "ana")

    assert automation(campaign.slug, "--probe-new", "--daily-batches", "--by", "adm") == (
        "probe_new=on contacts=off daily_batches=on")
    assert automation(campaign.slug, "--no-daily-batches", "--by", "adm") == (
        "probe_new=on contacts=off daily_batches=off")
    changes = AuditEvent.objects.filter(action="campaign.automation").order_by("id")
    assert [e.data["after"]["daily_batches"] for e in changes] == [True, False]
    assert changes[0].actor.username == "adm"


def test_new_hosts_are_probed_by_the_system_only_where_asked(campaign, agency):
    from campaign.services import create_campaign

    manual = create_campaign(slug="by-hand", agency_name=agency.name, kinds="relay")
    for c in (campaign, manual):
        for n in range(3):
            Host.objects.create(campaign=c, ip=f"82.44.76.{n + 1}", kinds=1)
    Host.objects.create(campaign=campaign, ip="82.44.76.50", kinds=1, state=states.NOT_OPEN)
    # Probed once with an error of ours: still imported, but not probed again every minute.
    errored = Host.objects.create(campaign=campaign, ip="82.44.76.60", kinds=1)
    earlier = ProbeRun.objects.create(campaign=campaign, status=ProbeRun.DONE)
    ProbeResult.objects.create(run=earlier, host=errored, check_name="smtp_relay", port=25,
                               verdict="error")
    set_policy(campaign, probe_new=True)

    (run,) = probe_services.start_auto_probes()
    assert errored.pk not in run.host_ids
    assert run.campaign == campaign and run.reason == "auto" and run.created_by is None
    assert sorted(Host.objects.filter(pk__in=run.host_ids).values_list("state", flat=True)) \
        == [states.IMPORTED] * 3  # the new hosts only, not the one probed before
    step = AuditEvent.objects.get(action="automation.probe_run")
    assert step.actor is None and step.data == {"by": "system", "hosts": 3}
    # A run under way: the next minute's look starts no second one.
    assert probe_services.start_auto_probes() == []
    assert not ProbeRun.objects.filter(campaign=manual).exists()


def test_a_daily_draft_per_language_goes_through_four_eyes_like_any_batch(campaign, rita):
    add_finding(campaign, email="abuse@isp.de.example", language="de", country="DE")
    add_finding(campaign, email="abuse@isp.fr.example", language="fr", country="FR")
    add_finding(campaign, email="noc@isp.fr.example", language="fr", country="FR")
    set_policy(campaign, daily_batches=True)

    drafted = batches.draft_daily_batches()
    by_language = {b.filters["language"]: b.letters.count() for b in drafted}
    assert by_language == {"de": 1, "fr": 2}
    assert all(b.created_by is None and b.state == "draft" for b in drafted)
    assert AuditEvent.objects.filter(action="automation.batch_draft", actor=None).count() == 2
    # The next day: the hosts are in those drafts already, so nothing is drafted twice.
    assert batches.draft_daily_batches() == []

    french = next(b for b in drafted if b.filters["language"] == "fr")
    ada = make_user("ada", "admin")  # may build and review, never her own
    batches.submit_batch(batch=french, actor=ada)
    with pytest.raises(FourEyesViolation):
        batches.approve_batch(batch=french, actor=ada)
    batches.approve_batch(batch=french, actor=rita)
    assert Batch.objects.get(pk=french.pk).state == "approved"


def test_no_draft_for_a_campaign_that_did_not_ask(campaign):
    add_finding(campaign, email="abuse@isp.de.example", language="de", country="DE")
    assert batches.draft_daily_batches() == []


def test_the_campaign_page_sets_the_policy_for_admins_and_shows_it_to_others(client,
                                                                            campaign, alice):
    admin = make_user("adm", "admin")
    client.force_login(admin)
    page = client.get(reverse("campaign_detail", args=[campaign.slug])).content.decode()
    assert 'name="probe_new"' in page and "Save automation" in page
    response = client.post(reverse("campaign_automation", args=[campaign.slug]),
                           {"probe_new": "on", "contacts": "on"})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.auto_probe_new, campaign.auto_resolve_contacts,
            campaign.auto_draft_batches) == (True, True, False)

    client.force_login(alice)  # an analyst: sees the policy, cannot change it
    page = client.get(reverse("campaign_detail", args=[campaign.slug])).content.decode()
    assert "Save automation" not in page
    assert "Probe new hosts as they arrive: <strong>on</strong>" in page
    refused = client.post(reverse("campaign_automation", args=[campaign.slug]), {})
    assert refused.status_code == 403
    campaign.refresh_from_db()
    assert campaign.auto_probe_new is True
