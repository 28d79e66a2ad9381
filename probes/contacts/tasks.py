"""Celery tasks for abuse contacts: thin wrappers that take ids and call one service; and
queue_contact_run, which hands a run to them."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from campaign.automation import record_system_step
from probes.contacts import bootstrap, resolving
from probes.contacts.models import ContactRun


@shared_task(name="probes.resolve_contacts")
def run_contact_run_task(run_id: int) -> str | None:
    """Do one queued ContactRun (from `resolve_contacts --background` or the campaign page)."""
    run = resolving.run_contact_run(run_id)
    return run.summary_line if run is not None else None


def queue_contact_run(run: ContactRun) -> None:
    """Hand the run to the workers once the transaction that created it commits."""
    # After commit: a worker must find the run row it is handed.
    transaction.on_commit(lambda: run_contact_run_task.delay(run.pk))


@shared_task(name="probes.resolve_due_contacts")
def resolve_due_contacts() -> int:
    """Beat: resolve newly verified hosts and retry the ones whose registry was down."""
    started = 0
    resolving.abandon_stale_runs()
    for campaign, mode in resolving.campaigns_with_due_hosts():
        if ContactRun.objects.filter(
            campaign=campaign, status__in=[ContactRun.QUEUED, ContactRun.RUNNING]
        ).exists():
            continue  # one run per campaign at a time; the next beat picks up the rest
        run = resolving.create_contact_run(campaign, mode=mode)
        record_system_step("contact_run", campaign, obj=run, mode=mode)
        resolving.run_contact_run(run.pk)
        started += 1
    return started


@shared_task(name="probes.refresh_rdap_bootstrap")
def refresh_rdap_bootstrap() -> dict[str, int]:
    return bootstrap.refresh_bootstrap()
