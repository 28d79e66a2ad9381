"""SIGKILL the Celery worker mid-import, mid-probe-run and mid-sending; restart Redis mid-run.

Each test runs a real `celery worker` process on a dedicated Redis (see conftest), breaks it
on purpose while the work is half done, starts it again and checks that the work finished
with exact counts: nothing lost, nothing done twice. A task held by a killed worker comes
back when Redis's visibility timeout expires (6 s in tests/faults/worker_settings.py).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiosmtpd.controller import Controller

from campaign import kinds, states
from campaign.models import FeedImport, Host, Sighting
from campaign.services import create_campaign
from devtools.lab import LabServer, relay_everything, relay_nothing
from letters import batches, sending
from letters import states as letter_states
from letters.models import Letter
from probes.contacts.models import Contact
from probes.verification import services as probe_services
from probes.verification.canary import CanaryServer
from probes.verification.models import ProbeResult, ProbeRun
from tests.conftest import make_user
from tests.faults.conftest import free_port, wait_for

pytestmark = pytest.mark.faults

FEED_LINES = 300_000


@pytest.fixture
def campaign(transactional_db):
    from campaign.models import Agency

    Agency.objects.create(name="CERT-Faults", country="US",
                          sender_email="secureyourserver@cert.example",
                          reply_to="secureyourserver@cert.example")
    return create_campaign(slug="faults-2026", agency_name="CERT-Faults", kinds="relay,proxy")


def public_ip(n: int) -> str:
    # 20.0.0.0/8–23.0.0.0/8: public unicast, nothing reserved; data only, never contacted.
    return f"{20 + n // 65536 // 256}.{n // 65536 % 256}.{n // 256 % 256}.{n % 256 + 0}"


def test_an_import_killed_mid_feed_starts_over_and_counts_every_line_once(
    campaign, start_worker, broker, tmp_path
):
    feed = tmp_path / "big-feed.txt"
    with feed.open("w") as out:
        out.write("# 300k open relays, one per line\n")
        for n in range(FEED_LINES):
            out.write(f"{public_ip(n + 256)}\n")
    feed_import = FeedImport.objects.create(campaign=campaign, source=str(feed), kind=kinds.RELAY,
                                            feed=_feed())
    worker = start_worker()
    broker.send_task("campaign.tasks.run_import", args=[feed_import.pk])

    # Killed after the first chunks reached the staging table, before the merge.
    wait_for(lambda: FeedImport.objects.filter(pk=feed_import.pk, lines__gt=0,
                                               status=FeedImport.RUNNING).exists(),
             60, "the import to be under way")
    worker.kill()
    half = FeedImport.objects.get(pk=feed_import.pk)
    assert half.status == FeedImport.RUNNING and 0 < half.lines < FEED_LINES + 1
    assert Host.objects.filter(campaign=campaign).count() == 0  # nothing merged yet

    worker.start()
    wait_for(lambda: FeedImport.objects.filter(pk=feed_import.pk, status=FeedImport.DONE)
             .exists(), 90, f"the import to finish\n{worker.logs()}", step=0.5)
    done = FeedImport.objects.get(pk=feed_import.pk)
    assert (done.added, done.known, done.duplicates, done.rejected) == (FEED_LINES, 0, 0, 0)
    assert done.lines == FEED_LINES + 1
    assert Host.objects.filter(campaign=campaign).count() == FEED_LINES
    assert Sighting.objects.filter(feed_import=done).count() == FEED_LINES
    assert worker.starts == 2


PROBE_HOSTS = 90  # a third open relays, a third closed relays, a third with nothing listening


def probe_env(lab_thread, start) -> dict[str, str]:
    from probes.verification.services import canary_key

    canary = start(CanaryServer(canary_key(), "127.0.0.9", 0))
    return {"PROBE_ALLOWED_NETWORKS": "127.0.0.0/8", "PROBE_LAB_ONLY": "1",
            "PROBE_TIMEOUT": "2", "PROBE_CANARY_DOMAIN": "canary.test",
            "PROBE_CANARY_ADDR": f"127.0.0.9:{canary.port}"}


def lab_hosts(campaign, start, slow_smtp) -> dict[str, int]:
    feed_import = FeedImport.objects.create(campaign=campaign, source="lab", kind=kinds.RELAY,
                                            feed=_feed())
    expected = {"open": 0, "not_open": 0, "unreachable": 0, "error": 0}
    for n in range(1, PROBE_HOSTS + 1):
        ip = f"127.0.77.{n}"
        if n % 3 == 0:
            port = free_port()  # nothing listens on ip:port: connection refused
            expected["unreachable"] += 1
        else:
            policy = relay_everything if n % 3 == 1 else relay_nothing
            port = start(LabServer(slow_smtp, host=ip, options={"rcpt": policy})).port
            expected["open" if n % 3 == 1 else "not_open"] += 1
        host = Host.objects.create(campaign=campaign, ip=ip, kinds=kinds.RELAY)
        Sighting.objects.create(host=host, feed_import=feed_import, line_no=n, port=port,
                                kind=kinds.RELAY, seen_at=feed_import.created_at)
    return expected


def assert_run_complete_and_exact(run: ProbeRun, expected: dict[str, int]) -> None:
    run.refresh_from_db()
    assert run.status == ProbeRun.DONE
    assert (run.total, run.done) == (PROBE_HOSTS, PROBE_HOSTS)
    assert run.by_verdict == expected
    # Each host's evidence was stored by exactly one attempt (one result per planned check).
    per_host = {h: ProbeResult.objects.filter(run=run, host_id=h).count() for h in run.host_ids}
    assert set(per_host.values()) == {1}
    assert run.checks_done == PROBE_HOSTS
    assert Host.objects.filter(campaign=run.campaign, state=states.VERIFIED_OPEN).count() == (
        expected["open"])
    assert Host.objects.filter(campaign=run.campaign, state=states.NOT_OPEN).count() == (
        expected["not_open"])
    assert Host.objects.filter(campaign=run.campaign, state=states.UNREACHABLE).count() == (
        expected["unreachable"])


def test_a_probe_run_killed_mid_chunk_finishes_with_every_host_counted_once(
    campaign, start_worker, broker, lab
):
    thread, start, slow_smtp = lab
    env = probe_env(thread, start)
    expected = lab_hosts(campaign, start, slow_smtp)
    run = probe_services.create_probe_run(campaign)
    worker = start_worker(**env)
    broker.send_task("probes.run", args=[run.pk])

    wait_for(lambda: ProbeRun.objects.get(pk=run.pk).done >= 15, 60,
             f"the run to be under way\n{worker.logs()}")
    worker.kill()
    half = ProbeRun.objects.get(pk=run.pk)
    assert half.status == ProbeRun.RUNNING and half.done < PROBE_HOSTS

    worker.start()
    wait_for(lambda: ProbeRun.objects.get(pk=run.pk).status == ProbeRun.DONE, 90,
             f"the run to finish\n{worker.logs()}", step=0.5)
    assert_run_complete_and_exact(run, expected)


def test_a_probe_run_survives_a_redis_restart(campaign, start_worker, broker, lab, redis_server):
    thread, start, slow_smtp = lab
    env = probe_env(thread, start)
    expected = lab_hosts(campaign, start, slow_smtp)
    run = probe_services.create_probe_run(campaign)
    worker = start_worker(**env)
    broker.send_task("probes.run", args=[run.pk])

    wait_for(lambda: ProbeRun.objects.get(pk=run.pk).done >= 15, 60,
             f"the run to be under way\n{worker.logs()}")
    redis_server.restart()  # queued chunks survive in the append-only file, as in production
    assert ProbeRun.objects.get(pk=run.pk).done < PROBE_HOSTS

    wait_for(lambda: ProbeRun.objects.get(pk=run.pk).status == ProbeRun.DONE, 90,
             f"the run to finish\n{worker.logs()}", step=0.5)
    assert_run_complete_and_exact(run, expected)
    assert worker.proc.poll() is None  # the same worker reconnected and carried on


LETTERS = 50


class SlowSink:
    """An SMTP sink (aiosmtpd) that takes 50 ms per message, so a kill lands mid-batch."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        await asyncio.sleep(0.05)
        head = envelope.original_content.split(b"\r\n\r\n", 1)[0].decode("ascii")
        key = next(line.split(":", 1)[1].strip() for line in head.splitlines()
                   if line.lower().startswith("x-letter-key:"))
        self.keys.append(key)
        return "250 2.0.0 Ok: queued"


def approved_batch_of_50(campaign):
    from probes.verification.models import ProbeResult as Result

    bob, rita = make_user("bob", "staff"), make_user("rita", "reviewer")
    run = ProbeRun.objects.create(campaign=campaign, status=ProbeRun.DONE)
    for n in range(1, LETTERS + 1):
        host = Host.objects.create(campaign=campaign, ip=f"198.51.100.{n}", kinds=kinds.RELAY,
                                   state=states.CONTACT_RESOLVED, country="US")
        Contact.objects.create(host=host, status=Contact.RESOLVED, email=f"abuse@isp{n}.example",
                               language="en", country="US", source="rdap")
        Result.objects.create(run=run, host=host, check_name="smtp_relay", port=25,
                              verdict="open", variant="plain", started_at=run.created_at,
                              details={"accepted": {"sender": "probe@canary.test",
                                                    "recipient": "x@canary.test",
                                                    "reply": "250 ok"}})
    batch = batches.build_batch(campaign=campaign, actor=bob)
    batches.submit_batch(batch=batch, actor=bob)
    batch = batches.approve_batch(batch=batch, actor=rita)
    assert batch.letters.count() == LETTERS
    return batch


def assert_each_letter_once(batch, received: list[str], *, concurrency: int) -> set[str]:
    """No letter twice at the SMTP server, none missing unless reported unconfirmed."""
    letters = {letter.idempotency_key: letter for letter in Letter.objects.filter(batch=batch)}
    assert len(letters) == LETTERS
    assert len(received) == len(set(received)), "a letter reached the SMTP server twice"
    assert set(received) <= set(letters)
    sent = {k for k, letter in letters.items() if letter.state == letter_states.SENT}
    unconfirmed = {k for k, letter in letters.items()
                   if letter.state == letter_states.QUEUED and letter.claimed_at is not None}
    assert sent | unconfirmed == set(letters)  # every letter is sent or waits for a person
    assert sent <= set(received)  # "sent" is never a lie
    assert set(letters) - set(received) <= unconfirmed  # none missing unless flagged
    # At most one letter per process that was killed while holding it.
    assert len(unconfirmed) <= concurrency
    print(f"letters: sent={len(sent)} unconfirmed={len(unconfirmed)} "
          f"received={len(received)}")
    return unconfirmed


def test_a_sending_batch_killed_mid_way_sends_no_letter_twice_and_loses_none(
    campaign, start_worker, broker
):
    batch = approved_batch_of_50(campaign)
    sink = SlowSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        worker = start_worker(EMAIL_URL=f"smtp://127.0.0.1:{controller.port}")
        broker.send_task("letters.tasks.send_batch_task", args=[batch.pk])
        wait_for(lambda: len(sink.keys) >= 10, 60, f"letters to arrive\n{worker.logs()}")
        worker.kill()
        assert len(sink.keys) < LETTERS

        worker.start()

        def settled() -> bool:
            letters = Letter.objects.filter(batch=batch)
            waiting = letters.filter(state=letter_states.QUEUED,
                                     claimed_at__isnull=True).count()
            return waiting == 0 and letters.filter(state=letter_states.SENT).exists()

        wait_for(settled, 90, f"the batch to be sent\n{worker.logs()}", step=0.5)
        time.sleep(0.5)  # a last message on the wire would show up in the sink now
    finally:
        controller.stop()

    received = list(sink.keys)
    unconfirmed = assert_each_letter_once(batch, received, concurrency=1)
    summary = sending.send_batch(batch=batch)  # what a person re-running it sees
    assert (summary.sent, summary.unconfirmed) == (0, len(unconfirmed))
    assert len(sink.keys) == len(received)


def test_killed_pool_processes_hand_their_letters_back_and_none_is_sent_twice(
    campaign, start_worker, broker
):
    """Prefork: the OOM killer takes the children; acks_late + reject_on_worker_lost requeue."""
    batch = approved_batch_of_50(campaign)
    sink = SlowSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        worker = start_worker(pool="prefork", concurrency=2,
                              EMAIL_URL=f"smtp://127.0.0.1:{controller.port}")
        broker.send_task("letters.tasks.send_batch_task", args=[batch.pk])
        wait_for(lambda: len(sink.keys) >= 10, 60, f"letters to arrive\n{worker.logs()}")
        assert worker.kill_children()
        assert len(sink.keys) < LETTERS

        def settled() -> bool:
            return not Letter.objects.filter(batch=batch, state=letter_states.QUEUED,
                                             claimed_at__isnull=True).exists()

        # No restart and no visibility timeout: the main process requeues at once.
        wait_for(settled, 30, f"the batch to be sent\n{worker.logs()}", step=0.2)
        time.sleep(0.5)
    finally:
        controller.stop()
    assert worker.proc.poll() is None and worker.starts == 1
    assert "WorkerLostError" in worker.logs()
    assert_each_letter_once(batch, list(sink.keys), concurrency=2)


# Six registry networks from the RDAP fixtures, ten verified-open hosts in each.
CONTACT_NETWORKS = ("82.44.77", "99.232.84", "179.231.41", "41.147.113", "220.201.145",
                    "97.2.193")


def test_a_contact_run_killed_mid_way_is_finished_by_the_redelivered_task(
    campaign, start_worker, broker, worker_env, settings
):
    from probes.contacts import bootstrap, resolving
    from probes.contacts.models import ContactRun
    from tests.contacts.fakes import FakeRdap

    rdap = FakeRdap().load_fixtures()
    by_network = rdap.fallback

    def slow_registry(path):
        time.sleep(0.4)  # blocks the fake's loop: one slow registry answering in turn
        return by_network(path)

    try:
        # The worker reads the bootstrap files from its own var dir; fetch them there.
        settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8"]
        settings.RDAP_BOOTSTRAP_URL = rdap.bootstrap_url
        settings.RDAP_BOOTSTRAP_DIR = f"{worker_env['SYS_VAR_DIR']}/rdap"
        bootstrap.refresh_bootstrap()
        rdap.requests.clear()
        rdap.fallback = slow_registry
        hosts = [Host.objects.create(campaign=campaign, ip=f"{net}.{n}", kinds=kinds.RELAY,
                                     state=states.VERIFIED_OPEN)
                 for net in CONTACT_NETWORKS for n in range(1, 11)]
        run = resolving.create_contact_run(campaign)
        worker = start_worker(PROBE_ALLOWED_NETWORKS="127.0.0.0/8", PROBE_LAB_ONLY="1",
                              PROBE_TIMEOUT="3", CONTACT_LOOKUPS_PER_SECOND="0",
                              WHOIS_IANA_SERVER="127.0.0.1:9")
        broker.send_task("probes.resolve_contacts", args=[run.pk])
        wait_for(lambda: rdap.count("/") >= 3, 60, f"look-ups to start\n{worker.logs()}")
        worker.kill()
        assert ContactRun.objects.get(pk=run.pk).status == ContactRun.RUNNING

        worker.start()
        wait_for(lambda: ContactRun.objects.get(pk=run.pk).status == ContactRun.DONE, 60,
                 f"the contact run to finish\n{worker.logs()}", step=0.5)
    finally:
        rdap.stop()
    run.refresh_from_db()
    assert (run.hosts_total, run.hosts_done, run.failed) == (len(hosts), len(hosts), 0)
    assert Contact.objects.filter(host__campaign=campaign, status=Contact.RESOLVED).count() == (
        len(hosts))
    assert Host.objects.filter(campaign=campaign, state=states.CONTACT_RESOLVED).count() == (
        len(hosts))


def _feed():
    from campaign.models import Feed

    return Feed.objects.get_or_create(name="faults feed")[0]
