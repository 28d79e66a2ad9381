"""The bounce-mailbox poller SIGKILLed midway through a mailbox (a real `manage.py fetch_mail`
process against a real dovecot), then run again: every message recorded exactly once."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from letters import states
from letters.models import Batch, InboundMessage, Letter
from tests.faults.conftest import wait_for
from tests.letters.imap_server import Dovecot
from tests.letters.test_inbound_classify import gmail_bounce

pytestmark = [pytest.mark.faults, pytest.mark.servers]

REPO = Path(__file__).resolve().parents[2]
MESSAGES = 600


@pytest.fixture
def dovecot():
    server = Dovecot().start()
    try:
        yield server
    finally:
        server.stop()


def test_killed_midway_then_run_again_records_each_message_once(worker_env, dovecot, campaign,
                                                                 bob, settings):
    batch = Batch.objects.create(campaign=campaign, state="sent", created_by=bob)
    letters = Letter.objects.bulk_create(
        Letter(batch=batch, campaign=campaign, email=f"abuse@net{i}.example", language="en",
               kind=states.FIRST_NOTICE, state=states.SENT, sent_at=timezone.now(),
               subject="s", body_text="t", body_html="h")
        for i in range(50))
    raw = [(f"X-Seq: {i}\n" + gmail_bounce(letters[i % 50].idempotency_key,
                                            letters[i % 50].email)).encode()
           for i in range(MESSAGES)]
    dovecot.append(raw)
    env = {**worker_env, "INBOUND_IMAP_URL": dovecot.url}
    poller = subprocess.Popen([sys.executable, "manage.py", "fetch_mail"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Killed once it has recorded some but (BATCH=200 per move) not all of the mailbox.
        wait_for(lambda: InboundMessage.objects.count() >= 250 or poller.poll() is not None,
                 60, "the poller to record some messages")
        os.kill(poller.pid, signal.SIGKILL)
        poller.wait(10)
    finally:
        if poller.poll() is None:
            poller.kill()
    recorded_before = InboundMessage.objects.count()
    assert 0 < recorded_before < MESSAGES, "killed too late to test anything"
    assert dovecot.count("INBOX") > 0  # what was not moved is still there

    settings.INBOUND_IMAP_URL = dovecot.url
    call_command("fetch_mail")
    assert InboundMessage.objects.count() == MESSAGES
    assert dovecot.count("INBOX") == 0 and dovecot.count("Processed") == MESSAGES
    # Each letter bounced by exactly its own messages, each event once.
    assert sorted(set(Letter.objects.values_list("state", flat=True))) == [states.BOUNCED]
    for letter in Letter.objects.all():
        assert letter.events.count() == MESSAGES // 50
