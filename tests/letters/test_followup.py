"""Follow-ups through the real probe engine against relays on loopback; the report."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaign import kinds
from campaign import states as host_states
from campaign.models import Feed, FeedImport, Host, Sighting
from letters import batches, followup, report, selectors, sending, states
from letters.models import Letter, Retest
from tests.letters.conftest import add_finding
from tests.letters.helpers import approved_batch
from tests.probes import fakes

pytestmark = pytest.mark.django_db


def listed_relay(campaign, ip, port, *, email, language="en", country="US"):
    """A host verified open on `port` whose feed line named that port (so it is re-probed)."""
    host = add_finding(campaign, email=email, language=language, country=country, ip=ip,
                       port=port)
    Host.objects.filter(pk=host.pk).update(kinds=kinds.RELAY)
    feed, _ = Feed.objects.get_or_create(name="letters test feed")
    feed_import, _ = FeedImport.objects.get_or_create(
        campaign=campaign, feed=feed, source="test", defaults={"kind": kinds.RELAY})
    Sighting.objects.create(host=host, feed_import=feed_import, line_no=1,
                            seen_at=timezone.now(), port=port, kind=kinds.RELAY)
    return host


@pytest.fixture
def notified(campaign, bob, rita, fake, probe_settings):
    still_open = fake(fakes.smtp_server, host="127.0.0.81", rcpt=fakes.relay_everything)
    fixed = fake(fakes.smtp_server, host="127.0.0.82", rcpt=fakes.relay_nothing)
    a = listed_relay(campaign, "127.0.0.81", still_open.port, email="noc@open.example",
                     language="ja", country="JP")
    b = listed_relay(campaign, "127.0.0.82", fixed.port, email="noc@fixed.example",
                     language="de", country="DE")
    assert sending.send_batch(batch=approved_batch(campaign, bob, rita)).sent == 2
    return a, b


def test_follow_up_waits_for_the_delay(campaign, notified):
    assert followup.due_hosts(campaign) == []
    later = timezone.now() + timedelta(days=campaign.followup_delay_days + 1)
    assert sorted(followup.due_hosts(campaign, now=later)) == sorted(h.pk for h in notified)


def test_follow_up_remediates_closed_hosts_and_queues_a_second_notice(
        campaign, bob, rita, victor, notified, capsys):
    still_open, fixed = notified
    call_command("follow_up", "--campaign", campaign.slug)
    assert capsys.readouterr().out.strip() == "retested=0 remediated=0 still_open=0"
    call_command("follow_up", "--campaign", campaign.slug, "--now")
    assert capsys.readouterr().out.strip() == "retested=2 remediated=1 still_open=1"
    fixed.refresh_from_db()
    still_open.refresh_from_db()
    assert fixed.state == host_states.REMEDIATED and fixed.remediated_at
    assert still_open.state == host_states.NOTIFIED
    assert Retest.objects.get(host=still_open).outcome == Retest.STILL_OPEN
    # Re-tested since the last notice: not due again until a second notice goes out.
    call_command("follow_up", "--campaign", campaign.slug, "--now")
    assert capsys.readouterr().out.strip() == "retested=0 remediated=0 still_open=0"

    # The agency writes to a contact at most once per interval: the second notice waits.
    assert not batches.build_batch(campaign=campaign, actor=bob).letters.exists()
    later = timezone.now() + timedelta(days=campaign.agency.min_days_between_letters)
    batch = batches.build_batch(campaign=campaign, actor=bob, now=later)
    letter = batch.letters.get()
    assert letter.kind == states.SECOND_NOTICE and letter.email == "noc@open.example"
    assert "再通知" in letter.subject and still_open.ip in letter.body_text
    batches.submit_batch(batch=batch, actor=bob)
    batches.approve_batch(batch=batch, actor=victor)
    assert sending.send_batch(batch=batch).sent == 1
    still_open.refresh_from_db()
    assert still_open.state == host_states.NOTIFIED
    assert [row["kind"] for row in selectors.host_letters(still_open)] == [
        states.FIRST_NOTICE, states.SECOND_NOTICE]
    # The second notice is itself followed up.
    assert followup.due_hosts(campaign, ignore_delay=True) == [still_open.pk]


def test_the_report_counts_per_country_and_language(campaign, notified, capsys):
    still_open, fixed = notified
    followup.run_follow_up(campaign, ignore_delay=True)
    Letter.objects.filter(email="noc@open.example").update(
        state=states.DELIVERED, delivered_at=timezone.now())
    rows = {(r["country"], r["language"]): r for r in report.campaign_report(campaign)}
    assert rows[("DE", "de")]["remediated"] == 1
    assert rows[("DE", "de")]["remediation_rate"] == 1.0
    assert rows[("DE", "de")]["median_days_to_remediation"] == 0.0
    assert rows[("JP", "ja")]["delivered"] == 1 and rows[("JP", "ja")]["remediated"] == 0
    assert rows[("all", "all")]["notified"] == 2
    assert rows[("all", "all")]["remediation_rate"] == 0.5
    call_command("campaign_report", campaign.slug, "--csv")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == ("country,language,notified,delivered,bounced,replied,remediated,"
                        "remediation_rate,median_days_to_remediation")
    assert "DE,de,1,0,0,0,1,1.0,0.0" in lines
    assert "JP,ja,1,1,0,0,0,0.0," in lines
    call_command("campaign_report", campaign.slug)
    assert "remediated" in capsys.readouterr().out


def test_the_report_falls_back_to_the_contacts_country(campaign, bob, victor):
    # A plain IP feed gives hosts no country; the registry's answer for the contact does.
    host = add_finding(campaign, email="abuse@isp.example", language="fr", country="FR")
    Host.objects.filter(pk=host.pk).update(country="")
    batch = approved_batch(campaign, bob, victor)
    assert sending.send_batch(batch=batch).sent == 1
    rows = {(r["country"], r["language"])
            for r in report.campaign_report(campaign, from_source=True)}
    assert report.campaign_report(campaign) == report.campaign_report(
        campaign, from_source=True)
    assert ("FR", "fr") in rows and ("--", "fr") not in rows
