"""Cadence: one letter per contact per interval, across all of an agency's campaigns."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaign.models import Agency
from campaign.services import create_campaign
from letters import batches, cadence, sending, states
from letters.models import Letter
from tests.letters.conftest import add_finding
from tests.letters.helpers import approved_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def sibling(campaign):
    """Another campaign of the same agency."""
    return create_campaign(slug="oss-2027", agency_name=campaign.agency.name, kinds="relay")


def sent_to(campaign, bob, rita, email, **finding):
    add_finding(campaign, email=email, **finding)
    batch = approved_batch(campaign, bob, rita)
    assert sending.send_batch(batch=batch).sent == 1
    return batch.letters.get()


def test_a_contact_written_to_in_one_campaign_waits_in_another(campaign, sibling, bob, rita):
    letter = sent_to(campaign, bob, rita, "noc@isp.example")
    add_finding(sibling, email="noc@isp.example")
    add_finding(sibling, email="abuse@other.example")
    batch = batches.build_batch(campaign=sibling, actor=bob)
    assert list(batch.letters.values_list("email", flat=True)) == ["abuse@other.example"]
    assert batch.screened["waiting"] == 1 and batch.screened["waiting_hosts"] == 1
    [waiting] = batch.screened["waiting_contacts"]
    assert waiting["email"] == "noc@isp.example"
    assert f"written to on {letter.sent_at.date().isoformat()}" in waiting["reason"]
    assert "at most once every 30 days" in waiting["reason"]
    assert waiting["until"] == (letter.sent_at + timedelta(days=30)).isoformat()


def test_the_contact_is_written_to_once_the_interval_has_passed(campaign, sibling, bob, rita):
    sent_to(campaign, bob, rita, "noc@isp.example")
    add_finding(sibling, email="noc@isp.example")
    day_29 = timezone.now() + timedelta(days=29)
    assert batches.build_batch(campaign=sibling, actor=bob, now=day_29).letters.count() == 0
    day_31 = timezone.now() + timedelta(days=31)
    batch = batches.build_batch(campaign=sibling, actor=bob, now=day_31)
    assert batch.letters.get().email == "noc@isp.example" and batch.screened["waiting"] == 0


def test_the_interval_is_the_agencys_setting(campaign, sibling, bob, rita):
    Agency.objects.filter(pk=campaign.agency_id).update(min_days_between_letters=7)
    sent_to(campaign, bob, rita, "noc@isp.example")
    add_finding(sibling, email="noc@isp.example")
    day_8 = timezone.now() + timedelta(days=8)
    assert batches.build_batch(campaign=sibling, actor=bob, now=day_8).letters.count() == 1


def test_an_interval_of_zero_turns_the_cadence_off(campaign, sibling, bob, rita):
    Agency.objects.filter(pk=campaign.agency_id).update(min_days_between_letters=0)
    sent_to(campaign, bob, rita, "noc@isp.example")
    add_finding(sibling, email="noc@isp.example")
    assert batches.build_batch(campaign=sibling, actor=bob).letters.count() == 1


def test_another_agencys_letters_do_not_count(campaign, bob, rita):
    sent_to(campaign, bob, rita, "noc@isp.example")
    other = create_campaign(slug="bsi-2026", agency_name="BSI", kinds="relay")
    add_finding(other, email="noc@isp.example")
    batch = batches.build_batch(campaign=other, actor=bob)
    assert batch.letters.get().email == "noc@isp.example"


def test_a_letter_not_yet_sent_makes_the_contact_wait(campaign, sibling, bob):
    add_finding(campaign, email="noc@isp.example")
    batches.build_batch(campaign=campaign, actor=bob)  # a draft, not sent
    add_finding(sibling, email="noc@isp.example")
    batch = batches.build_batch(campaign=sibling, actor=bob)
    assert batch.letters.count() == 0
    assert batch.screened["waiting_contacts"][0]["reason"] == (
        "a letter to this contact is not sent yet")


def test_a_cancelled_letter_does_not_count(campaign, sibling, bob):
    add_finding(campaign, email="noc@isp.example")
    draft = batches.build_batch(campaign=campaign, actor=bob)
    batches.remove_letter(letter=draft.letters.get(), actor=bob, reason="wrong address")
    add_finding(sibling, email="noc@isp.example")
    assert batches.build_batch(campaign=sibling, actor=bob).letters.count() == 1


def test_one_batch_writes_one_letter_per_contact_and_the_other_notice_waits(campaign, bob):
    findings = [
        cadence_finding(1, states.FIRST_NOTICE), cadence_finding(2, states.SECOND_NOTICE),
        cadence_finding(3, states.FIRST_NOTICE),
    ]
    screen = cadence.screen_findings(campaign, findings)
    assert [f.host_id for f in screen.kept] == [1, 3]
    assert screen.waiting_hosts == 1
    assert screen.waiting[0].reason == (
        "a first notice to this contact is in this batch; the other notice waits")
    assert not Letter.objects.exists()


def cadence_finding(host_id, kind):
    from letters.selectors import Finding

    return Finding(host_id, f"192.0.2.{host_id}", "US", "noc@isp.example", "en", kind)
