"""Separate queues, several workers: real `celery worker` processes on a dedicated Redis.

Two workers consuming only the probes queue share one run's chunks, and every host is probed
exactly once; a mail worker sends a batch while a long probe run holds the probe worker, which
on one shared queue would have waited behind the run's chunks.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from aiosmtpd.controller import Controller

from devtools.lab import smtp_server
from letters import states as letter_states
from letters.models import Letter
from probes.verification import services as probe_services
from probes.verification.models import ProbeRun
from tests.faults.conftest import free_port, wait_for
from tests.faults.test_worker_faults import (
    LETTERS,
    PROBE_HOSTS,
    SlowSink,
    approved_batch_of_50,
    assert_run_complete_and_exact,
    campaign,  # noqa: F401 - the fixture
    lab_hosts,
    probe_env,
)

pytestmark = pytest.mark.faults

CHUNK_DONE = re.compile(r"Task probes\.chunk\[[0-9a-f-]+\] succeeded")


def test_two_probe_workers_share_a_runs_chunks_and_probe_each_host_once(
    campaign, start_worker, broker, lab  # noqa: F811
):
    thread, start, slow_smtp = lab
    env = probe_env(thread, start)
    expected = lab_hosts(campaign, start, slow_smtp)
    run = probe_services.create_probe_run(campaign)
    first = start_worker(queues="probes", name="probes-a", **env)
    second = start_worker(queues="probes", name="probes-b", **env)
    broker.send_task("probes.run", args=[run.pk])

    wait_for(lambda: ProbeRun.objects.get(pk=run.pk).status == ProbeRun.DONE, 120,
             f"the run to finish\n{first.logs()}\n{second.logs()}", step=0.5)
    assert_run_complete_and_exact(run, expected)
    chunks = {w.name: len(CHUNK_DONE.findall(w.logs())) for w in (first, second)}
    # 90 hosts in chunks of 10 (tests/faults/worker_settings.py): nine chunks, both took some.
    assert sum(chunks.values()) == PROBE_HOSTS // 10, chunks
    assert all(chunks.values()), chunks
    print(f"chunks per worker: {chunks}")


def test_sending_proceeds_while_a_long_probe_run_holds_the_probe_worker(
    campaign, start_worker, broker, lab  # noqa: F811
):
    thread, start, _slow = lab

    async def very_slow_smtp(reader, writer, server):
        await asyncio.sleep(1.0)  # every relay answers after a second: the run takes a while
        await smtp_server(reader, writer, server)

    env = probe_env(thread, start)
    lab_hosts(campaign, start, very_slow_smtp)
    batch = approved_batch_of_50(campaign)
    sink = SlowSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        probes = start_worker(queues="probes", name="probes", **env)
        mail = start_worker(queues="mail", name="mail",
                            EMAIL_URL=f"smtp://127.0.0.1:{controller.port}")
        run = probe_services.create_probe_run(campaign)
        broker.send_task("probes.run", args=[run.pk])
        wait_for(lambda: ProbeRun.objects.get(pk=run.pk).status == ProbeRun.RUNNING, 60,
                 f"the run to start\n{probes.logs()}")
        broker.send_task("letters.tasks.send_batch_task", args=[batch.pk])

        wait_for(lambda: Letter.objects.filter(batch=batch, state=letter_states.SENT).count()
                 == LETTERS, 60, f"the batch to be sent\n{mail.logs()}", step=0.2)
        during = ProbeRun.objects.get(pk=run.pk)
        assert during.status == ProbeRun.RUNNING and during.done < PROBE_HOSTS, (
            during.status, during.done)
        assert len(sink.keys) == LETTERS
        assert "Task probes.chunk[" not in mail.logs()
        assert "Task letters.tasks.send_batch_task[" not in probes.logs()
        print(f"batch of {LETTERS} sent while the run had probed {during.done}/{PROBE_HOSTS}")
    finally:
        controller.stop()
