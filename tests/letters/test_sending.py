"""Sending exactly once: claims, failures, throttling, hosts closed before sending."""

import threading

import pytest
from django.core import mail
from django.core.mail import get_connection

from campaign import states as host_states
from campaign.hosts import transition_host
from campaign.models import AuditEvent, Host
from letters import batches, errors, sending, states
from letters.models import Letter
from letters.throttle import Throttle, paced
from probes.contacts.models import Suppression
from tests.letters.helpers import Collector, approved_batch, smtp_server

pytestmark = pytest.mark.django_db


def test_an_approved_batch_is_sent_once_and_hosts_become_notified(campaign, bob, rita, finding):
    host = finding(email="abuse@isp.example", language="fr", country="FR")
    batch = approved_batch(campaign, bob, rita)
    summary = sending.send_batch(batch=batch)
    assert (summary.sent, summary.failed) == (1, 0)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["abuse@isp.example"]
    assert message.reply_to == ["secureyourserver@ftc.example"]
    assert message.from_email == "Federal Trade Commission <secureyourserver@ftc.example>"
    assert "Madame, Monsieur" in message.body and host.ip in message.body
    assert message.alternatives[0][1] == "text/html"
    letter = Letter.objects.get()
    assert letter.state == states.SENT and letter.sent_at
    assert message.extra_headers["Message-ID"] == letter.message_id == letter.esp_message_id
    host.refresh_from_db()
    assert host.state == host_states.NOTIFIED
    batch.refresh_from_db()
    assert batch.state == states.SENT
    # Sending again (a retried task, a second click) sends nothing.
    assert sending.send_batch(batch=batch).sent == 0
    assert sending.send_letter(letter.pk) == sending.SKIPPED
    assert len(mail.outbox) == 1
    assert AuditEvent.objects.filter(action="letter.sent", object_id=str(letter.pk)).count() == 1


def test_an_unapproved_batch_is_not_sent(campaign, bob, finding):
    finding(email="a@example.org")
    batch = batches.build_batch(campaign=campaign, actor=bob)
    with pytest.raises(errors.LetterError, match="only approved batches"):
        sending.send_batch(batch=batch)
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_the_same_letter_send_it_once(campaign, bob, rita, finding):
    finding(email="a@example.org")
    batch = approved_batch(campaign, bob, rita)
    letter = batch.letters.get()
    outcomes = []
    barrier = threading.Barrier(6)

    def worker():
        from django.db import connection

        barrier.wait()
        try:
            outcomes.append(sending.send_letter(letter.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [sending.SENT] + [sending.SKIPPED] * 5
    assert len(mail.outbox) == 1


def test_the_anymail_backend_stores_the_esp_message_id(campaign, bob, rita, finding, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    finding(email="a@example.org", language="ko", country="KR")
    batch = approved_batch(campaign, bob, rita)
    sending.send_batch(batch=batch)
    sent = mail.outbox[0]
    letter = Letter.objects.get()
    assert letter.esp_message_id == str(sent.anymail_status.message_id)
    assert sent.metadata == {"letter": letter.idempotency_key}
    assert sent.anymail_test_params["subject"] == letter.subject


def test_a_temporary_failure_keeps_the_letter_queued_for_a_retry(
        campaign, bob, rita, finding, settings):
    import socket

    finding(email="a@example.org")
    batch = approved_batch(campaign, bob, rita)
    with socket.socket() as sock:  # a loopback port with nobody listening
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    dead = get_connection("django.core.mail.backends.smtp.EmailBackend", host="127.0.0.1",
                          port=dead_port, timeout=2)
    letter = batch.letters.get()
    assert sending.send_letter(letter.pk, connection=dead) == sending.RETRY
    letter.refresh_from_db()
    assert letter.state == states.QUEUED and letter.claimed_at is None
    assert letter.attempts == 1 and "Connection" in letter.last_error
    assert sending.send_letter(letter.pk) == sending.SENT
    assert len(mail.outbox) == 1


def test_a_refused_recipient_fails_for_good_and_is_suppressed(campaign, bob, rita, finding):
    finding(email="gone@isp.example")
    finding(email="here@isp.example")
    batch = approved_batch(campaign, bob, rita)
    handler = Collector(refuse=("gone@isp.example",))
    server = smtp_server(handler)
    try:
        connection = get_connection("django.core.mail.backends.smtp.EmailBackend",
                                    host="127.0.0.1", port=server.port, timeout=5)
        summary = sending.send_batch(batch=batch, connection=connection)
    finally:
        server.stop()
    assert (summary.sent, summary.failed) == (1, 1)
    assert [rcpt for _, rcpt, _ in handler.messages] == [["here@isp.example"]]
    failed = Letter.objects.get(email="gone@isp.example")
    assert failed.state == states.FAILED and "550" in failed.last_error
    assert Suppression.objects.filter(value="gone@isp.example", source="bounce").exists()
    batch.refresh_from_db()
    assert batch.state == states.SENT


def test_hosts_found_closed_before_sending_drop_out_with_a_note(campaign, bob, rita, finding):
    still_open = finding(email="a@example.org")
    closed = finding(email="a@example.org", check="http_proxy", port=3128)
    alone = finding(email="b@example.org")
    batch = approved_batch(campaign, bob, rita)
    for host in (closed, alone):
        transition_host(Host.objects.get(pk=host.pk), host_states.NOT_OPEN, reason="re-test")
    summary = sending.send_batch(batch=batch)
    assert (summary.sent, summary.cancelled) == (1, 1)
    body = mail.outbox[0].body
    assert still_open.ip in body and closed.ip not in body
    assert Letter.objects.get(email="b@example.org").state == states.CANCELLED
    batch.refresh_from_db()
    assert {note["ip"] for note in batch.notes} == {closed.ip, alone.ip}
    assert "re-test" in batch.notes[0]["note"]


def test_an_address_suppressed_after_approval_is_not_written_to(campaign, bob, rita, finding):
    finding(email="a@example.org")
    batch = approved_batch(campaign, bob, rita)
    Suppression.objects.create(value="a@example.org", kind=Suppression.ADDRESS, reason="asked")
    summary = sending.send_batch(batch=batch)
    assert summary.sent == 0 and summary.cancelled == 1 and mail.outbox == []


def test_a_letter_claimed_by_a_dead_worker_is_not_sent_again_on_its_own(
        campaign, bob, rita, finding):
    finding(email="a@example.org")
    batch = approved_batch(campaign, bob, rita)
    letter = batch.letters.get()
    from django.utils import timezone

    # The worker claimed it and died: did the message leave? Nobody knows.
    Letter.objects.filter(pk=letter.pk).update(claimed_at=timezone.now(), claim_token="dead")
    summary = sending.send_batch(batch=batch)
    assert summary.sent == 0 and summary.unconfirmed == 1 and mail.outbox == []
    batch.refresh_from_db()
    assert batch.state == states.SENDING
    assert sending.release_claim(letter=letter, actor=bob, reason="not in the ESP log")
    assert sending.send_batch(batch=batch).sent == 1
    batch.refresh_from_db()
    assert batch.state == states.SENT


def test_an_unconfirmed_letter_is_released_from_the_command_line(
        campaign, bob, rita, alice, finding, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from django.utils import timezone

    from campaign.models import AuditEvent

    finding(email="a@example.org")
    batch = approved_batch(campaign, bob, rita)
    letter = batch.letters.get()
    Letter.objects.filter(pk=letter.pk).update(claimed_at=timezone.now(), claim_token="dead")
    call_command("letters_batch", "send", str(batch.pk))
    captured = capsys.readouterr()
    assert captured.out.strip() == "sent=0 failed=0"
    assert "unconfirmed=1" in captured.err and captured.err.strip().endswith(str(letter.pk))
    with pytest.raises(CommandError, match="alice may not release letters"):
        call_command("letters_batch", "release", str(letter.pk), "--by", "alice",
                     "--reason", "checked")
    call_command("letters_batch", "release", str(letter.pk), "--by", "bob",
                 "--reason", "not in the ESP log")
    assert capsys.readouterr().out.strip() == f"letter={letter.pk} released=1"
    assert AuditEvent.objects.filter(action="letter.release").count() == 1
    with pytest.raises(CommandError, match="not waiting for a person"):
        call_command("letters_batch", "release", str(letter.pk), "--by", "bob",
                     "--reason", "again")
    call_command("letters_batch", "send", str(batch.pk))
    assert capsys.readouterr().out.strip() == "sent=1 failed=0"
    assert len(mail.outbox) == 1


def test_the_throttle_paces_overall_and_per_domain():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    throttle = Throttle(per_minute=3, per_domain_per_minute=2, clock=lambda: now[0])
    items = [(1, "big.example"), (2, "big.example"), (3, "big.example"), (4, "small.example"),
             (5, "small.example")]
    order = list(paced(items, throttle, sleep))
    # Two from big.example, then small.example goes ahead instead of waiting behind it.
    assert order[:3] == [1, 2, 4]
    assert sorted(order) == [1, 2, 3, 4, 5]
    assert slept and sum(slept) == pytest.approx(60.0)


def test_sending_respects_the_settings_throttle(campaign, bob, rita, finding, settings):
    settings.LETTERS_PER_MINUTE = 2
    settings.LETTERS_PER_DOMAIN_PER_MINUTE = 0
    for i in range(3):
        finding(email=f"a{i}@example.org")
    batch = approved_batch(campaign, bob, rita)
    slept = []
    clock = [0.0]
    throttle = sending.throttle_from_settings()
    throttle.clock = lambda: clock[0]

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    assert sending.send_batch(batch=batch, throttle=throttle, sleep=sleep).sent == 3
    assert slept == [60.0]


def test_task_arguments_and_results_survive_json(campaign, bob, rita, finding):
    import json

    from letters.tasks import send_batch_task

    finding(email="a@example.org")
    batch = approved_batch(campaign, bob, rita)
    result = send_batch_task.delay(json.loads(json.dumps(batch.pk)))
    assert json.loads(json.dumps(result.get())) == "sent=1 failed=0"
    assert send_batch_task.delay(batch.pk).get() == "sent=0 failed=0"
    assert len(mail.outbox) == 1
