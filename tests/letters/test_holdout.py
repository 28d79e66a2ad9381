"""The control group: a reproducible draw by contact, and no letter to it by any path."""

import itertools
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from campaign import states as host_states
from campaign.models import Campaign
from letters import batches, followup, holdout, sending, states
from letters.models import ContactDraw, ControlHost, Letter, Retest
from probes.contacts.overrides import set_contact
from tests.letters.conftest import add_finding
from tests.letters.helpers import approved_batch
from tests.letters.test_followup import listed_relay
from tests.probes import fakes

pytestmark = pytest.mark.django_db

SEED = "control-2026"


def address(held: bool, tag: str, percent: int = 50) -> str:
    """The first address `{tag}{n}@…` that the draw holds out (or keeps in)."""
    for n in itertools.count():
        email = f"{tag}{n}@isp.example"
        if holdout.is_drawn_out(SEED, email, percent) == held:
            return email
    raise AssertionError("unreachable")


@pytest.fixture
def controlled(campaign):
    Campaign.objects.filter(pk=campaign.pk).update(holdout_percent=50, holdout_seed=SEED)
    campaign.refresh_from_db()
    return campaign


def test_the_draw_is_reproducible_and_blind_to_case():
    assert holdout.draw_bucket(SEED, "NOC@Example.org") == holdout.draw_bucket(
        SEED, "noc@example.org")
    assert holdout.draw_bucket(SEED, "noc@example.org") != holdout.draw_bucket(
        "other", "noc@example.org")
    assert 0 <= holdout.draw_bucket(SEED, "noc@example.org") < 1


def test_about_the_chosen_share_is_held_out():
    emails = [f"abuse{i}@net{i % 97}.example" for i in range(20000)]
    share = sum(holdout.is_drawn_out(SEED, e, 10) for e in emails) / len(emails)
    assert 0.09 < share < 0.11


def test_nothing_is_drawn_while_the_control_group_is_off(campaign, bob, finding):
    finding(email="abuse@isp.example")
    assert batches.build_batch(campaign=campaign, actor=bob).letters.count() == 1
    assert not ContactDraw.objects.exists()


def test_a_held_out_contact_gets_no_letter_and_the_batch_says_how_many(controlled, bob):
    held, kept = address(True, "held"), address(False, "kept")
    a = add_finding(controlled, email=held)
    b = add_finding(controlled, email=held, check="http_proxy", port=8080, variant="connect")
    add_finding(controlled, email=kept)
    batch = batches.build_batch(campaign=controlled, actor=bob)
    assert list(batch.letters.values_list("email", flat=True)) == [kept]
    assert batch.screened["held_out"] == 2 and batch.screened["held_out_contacts"] == 1
    # By contact, not by host: both of its hosts are controls, their clocks started now.
    assert set(ControlHost.objects.values_list("host_id", flat=True)) == {a.pk, b.pk}
    draw = ContactDraw.objects.get(email=held)
    assert draw.held_out and draw.percent == 50 and SEED in draw.reason and draw.drawn_at
    assert not ContactDraw.objects.get(email=kept).held_out
    assert holdout.held_out_counts(controlled) == {"percent": 50, "contacts": 1, "hosts": 2}


def test_the_recorded_draw_stands_when_the_setting_changes(controlled, bob):
    held = address(True, "held")
    add_finding(controlled, email=held)
    batches.build_batch(campaign=controlled, actor=bob)
    since = ControlHost.objects.get().since
    Campaign.objects.filter(pk=controlled.pk).update(holdout_percent=0, holdout_seed="new")
    controlled.refresh_from_db()
    again = batches.build_batch(campaign=controlled, actor=bob)
    assert again.letters.count() == 0 and again.screened["held_out"] == 1
    assert ControlHost.objects.get().since == since  # the first hold-out starts the clock


def test_a_contact_written_to_before_the_control_group_began_stays_notified(campaign, bob):
    held = address(True, "held")
    add_finding(campaign, email=held)
    batches.build_batch(campaign=campaign, actor=bob)  # control group off: a letter
    Campaign.objects.filter(pk=campaign.pk).update(holdout_percent=50, holdout_seed=SEED)
    campaign.refresh_from_db()
    add_finding(campaign, email=held)
    later = timezone.now() + timedelta(days=60)
    Letter.objects.filter(email=held).update(state=states.SENT, sent_at=timezone.now())
    batch = batches.build_batch(campaign=campaign, actor=bob, now=later)
    assert batch.screened["held_out"] == 0 and batch.letters.get().email == held
    assert ContactDraw.objects.get(email=held).reason.startswith("written to before")


def test_a_held_out_contact_cannot_end_up_in_any_batch_by_any_path(
        controlled, bob, rita, client, fake, probe_settings, capsys):
    held, kept = address(True, "held"), address(False, "kept")
    relay = fake(fakes.smtp_server, host="127.0.0.91", rcpt=fakes.relay_everything)
    host = listed_relay(controlled, "127.0.0.91", relay.port, email=kept)
    other = fake(fakes.smtp_server, host="127.0.0.95", rcpt=fakes.relay_everything)
    listed_relay(controlled, "127.0.0.95", other.port, email=held)

    # 1. A first notice: only the contact drawn in.
    first = approved_batch(controlled, bob, rita)
    assert list(first.letters.values_list("email", flat=True)) == [kept]
    assert sending.send_batch(batch=first).sent == 1
    host.refresh_from_db()
    assert host.state == host_states.NOTIFIED

    # 2. A second notice, after the notified host's contact became a held-out address.
    set_contact(campaign=controlled, ip=host.ip, email=held, actor=bob, reason="owner moved")
    call_command("follow_up", "--campaign", controlled.slug, "--now")
    assert capsys.readouterr().out.strip() == "retested=1 remediated=0 still_open=1"
    assert Retest.objects.get(host=host).outcome == Retest.STILL_OPEN
    assert ControlHost.objects.get().last_retest_at is not None  # re-tested alongside
    later = timezone.now() + timedelta(days=controlled.agency.min_days_between_letters + 1)
    second = batches.build_batch(campaign=controlled, actor=bob, now=later)
    assert second.letters.count() == 0 and second.screened["held_out"] == 2
    # Left out, but no control: it was written to before its contact changed.
    assert not ControlHost.objects.filter(host=host).exists()

    # 3. The batch page: building explains that hosts are held out, and builds nothing.
    client.force_login(bob)
    response = client.post(reverse("batch_create", args=[controlled.slug]), {"country": ""})
    assert response.status_code == 400
    assert "2 hosts are held out as the control group" in response.content.decode()

    # 4. Sending: a queued letter whose address was held out meanwhile is cancelled, unsent.
    add_finding(controlled, email="late@isp.example")
    third = approved_batch(controlled, bob, rita)
    ContactDraw.objects.filter(email="late@isp.example").update(held_out=True)
    mail.outbox.clear()
    summary = sending.send_batch(batch=third)
    assert summary.sent == 0 and summary.cancelled == 1 and mail.outbox == []

    # Whatever happened, no letter to a held-out address is alive.
    held_emails = set(ContactDraw.objects.filter(held_out=True).values_list("email", flat=True))
    assert held in held_emails
    assert not Letter.objects.filter(email__in=held_emails).exclude(
        state=states.CANCELLED).exists()


def test_control_hosts_are_retested_on_the_notified_hosts_schedule(
        controlled, bob, rita, fake, probe_settings, capsys):
    fixed = fake(fakes.smtp_server, host="127.0.0.92", rcpt=fakes.relay_nothing)
    still = fake(fakes.smtp_server, host="127.0.0.93", rcpt=fakes.relay_everything)
    notified = fake(fakes.smtp_server, host="127.0.0.94", rcpt=fakes.relay_nothing)
    a = listed_relay(controlled, "127.0.0.92", fixed.port, email=address(True, "a"))
    b = listed_relay(controlled, "127.0.0.93", still.port, email=address(True, "b"))
    n = listed_relay(controlled, "127.0.0.94", notified.port, email=address(False, "n"))
    assert sending.send_batch(batch=approved_batch(controlled, bob, rita)).sent == 1
    assert followup.control_due_hosts(controlled) == []
    assert followup.due_hosts(controlled) == []

    later = timezone.now() + timedelta(days=controlled.followup_delay_days + 1)
    assert followup.control_due_hosts(controlled, now=later) == [a.pk, b.pk]
    summary = followup.run_follow_up(controlled, now=later)
    # The command's line counts the notified hosts; the controls are counted apart.
    assert summary.line == "retested=1 remediated=1 still_open=0"
    assert (summary.control_retested, summary.control_remediated) == (2, 1)
    assert Retest.objects.get(host=a).outcome == Retest.REMEDIATED
    assert Retest.objects.get(host=b).outcome == Retest.STILL_OPEN
    assert Retest.objects.get(host=n).outcome == Retest.REMEDIATED
    control = {c.host_id: c for c in ControlHost.objects.all()}
    assert control[a.pk].remediated_at is not None and control[b.pk].remediated_at is None
    assert control[b.pk].last_retest_at is not None
    # Never written to, whatever the re-test found.
    assert not Letter.objects.filter(hosts__in=[a, b]).exists()
    # Not due again until another delay has passed; a fixed control host never again.
    assert followup.control_due_hosts(controlled) == []
    assert followup.control_due_hosts(controlled, ignore_delay=True) == []
    assert followup.control_due_hosts(controlled, now=later) == [b.pk]


@pytest.mark.django_db
def test_the_draws_and_control_hosts_can_be_read_in_the_admin_but_not_changed(
        client, campaign):
    from django.contrib.auth.models import User

    host = add_finding(campaign, email="held@example.net")
    draw = ContactDraw.objects.create(campaign=campaign, email="held@example.net", held_out=True,
                                      bucket=0.042, percent=10, reason="drawn")
    control = ControlHost.objects.create(campaign=campaign, host=host, draw=draw)
    client.force_login(User.objects.create_superuser("root", "root@example.net", "x"))
    listing = client.get(reverse("admin:letters_contactdraw_changelist"))
    assert listing.status_code == 200 and "held@example.net" in listing.content.decode()
    assert client.get(reverse("admin:letters_controlhost_changelist")).status_code == 200
    assert client.get(reverse("admin:letters_contactdraw_add")).status_code == 403
    assert client.post(reverse("admin:letters_contactdraw_delete", args=[draw.pk]),
                       {"post": "yes"}).status_code == 403
    assert client.post(reverse("admin:letters_controlhost_delete", args=[control.pk]),
                       {"post": "yes"}).status_code == 403
    assert ContactDraw.objects.filter(pk=draw.pk).exists()
    assert ControlHost.objects.filter(pk=control.pk).exists()
