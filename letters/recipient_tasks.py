"""Celery task for re-tests started on the recipient page (thin: ids in, services called)."""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError

from letters import recipient
from letters.models import Letter


@shared_task(name="letters.recipient_retest", autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def recipient_retest_task(run_id: int, letter_id: int) -> str:
    """Probe the run's hosts (a letter's few) in this worker, then record who closed theirs.

    Safe to run twice: a finished run is not probed again and the outcome is recorded once.
    """
    from probes.verification.models import ProbeRun
    from probes.verification.services import run_probe_run

    run = ProbeRun.objects.select_related("campaign").filter(pk=run_id).first()
    letter = Letter.objects.filter(pk=letter_id).first()
    if run is None or letter is None:
        return "gone"
    run = run_probe_run(run)
    recorded = recipient.record_self_service_outcome(letter, run)
    return f"{run.summary_line} self_service_remediated={recorded}"
