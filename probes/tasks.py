"""Celery tasks for probe runs: thin, take ids, safe to run twice (acks_late redelivers);
and queue_probe_run, which hands a run to them."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError, transaction

from probes.verification import services
from probes.verification.models import ProbeRun

# The database went away (a restart, a failover): both tasks are idempotent, so they are
# retried with backoff instead of failing and leaving the run "running" for ever.
RETRY_ON_DB = {"autoretry_for": (OperationalError, InterfaceError), "retry_backoff": 2,
               "retry_backoff_max": 60, "max_retries": 8}


@shared_task(name="probes.run", **RETRY_ON_DB)
def run_probe_run_task(run_id: int) -> int:
    """Fan a run out into chunk tasks; returns how many chunks were queued."""
    run = ProbeRun.objects.filter(pk=run_id).first()
    if run is None or not services.mark_running(run):
        return 0
    pieces = services.chunks(run)
    for host_ids in pieces:
        probe_chunk_task.delay(run.pk, host_ids)
    if not pieces:
        services.finish_run_if_complete(run)
    return len(pieces)


def queue_probe_run(run: ProbeRun) -> None:
    """Hand the run to the workers once the transaction that created it commits."""
    transaction.on_commit(lambda: run_probe_run_task.delay(run.pk))


@shared_task(name="probes.chunk", **RETRY_ON_DB)
def probe_chunk_task(run_id: int, host_ids: list[int]) -> int:
    """Probe one chunk concurrently (asyncio inside); hosts already recorded are skipped."""
    run = ProbeRun.objects.select_related("campaign").filter(pk=run_id).first()
    if run is None or run.status not in (ProbeRun.RUNNING, ProbeRun.QUEUED):
        return 0
    probed = services.probe_chunk(run, host_ids)
    services.finish_run_if_complete(run)
    return probed


@shared_task(name="probes.reprobe_due")
def reprobe_due_task() -> list[int]:
    """Beat: re-probe hosts whose last probe is older than their campaign's interval."""
    runs = services.start_due_reprobes()
    for run in runs:
        queue_probe_run(run)
    return [run.pk for run in runs]


@shared_task(name="probes.auto_probe_new")
def auto_probe_new_task() -> list[int]:
    """Beat, every minute: campaigns that probe new hosts as they arrive."""
    runs = services.start_auto_probes()
    for run in runs:
        queue_probe_run(run)
    return [run.pk for run in runs]


# Contact-resolution tasks live with their code; importing them registers them with Celery.
from probes.contacts import tasks as contact_tasks  # noqa: E402,F401
