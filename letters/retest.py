""""Test my server again now" on the recipient's page: the re-test it queues, the Celery task
that runs it, who it found closed, and what the page shows of it.

The run is an ordinary probe run (the same engine and the same state rules as any run: a
notified host that refuses becomes remediated) over this letter's notified hosts only; each
host it closed is also recorded as self-reported and verified.
"""

from __future__ import annotations

from celery import shared_task
from django.db import DatabaseError, transaction

from campaign import states as host_states
from campaign.audit import record
from campaign.models import AuditEvent, Host
from letters.models import Letter
from letters.recipient import check_limits, letter_links
from probes.verification.base import overall_verdict
from probes.verification.models import ProbeResult, ProbeRun
from probes.verification.services import create_probe_run, run_probe_run

SELF_SERVICE = "self_service"  # ProbeRun.reason of re-tests started from the page
RETEST_ACTION = "letter.recipient_retest"


class NothingToTest(Exception):
    pass


def retest_candidates(letter: Letter) -> list[int]:
    """Hosts of the letter a re-test can still close (notified, not yet remediated)."""
    return list(letter_links(letter).filter(host__state=host_states.NOTIFIED)
                .values_list("host_id", flat=True))


def start_retest(letter: Letter, *, token: str, client_ip: str) -> ProbeRun:
    """Queue the verification probe on this letter's open hosts; returns the ProbeRun.

    Raises RateLimited or NothingToTest. The run goes through Celery (recipient_retest_task).
    """
    check_limits("retest", token, client_ip)
    ids = retest_candidates(letter)
    if not ids:
        raise NothingToTest
    with transaction.atomic():
        run = create_probe_run(letter.campaign, host_ids=ids, reason=SELF_SERVICE)
        record(RETEST_ACTION, campaign_id=letter.campaign_id, obj=letter,
               data={"run": run.pk, "hosts": len(ids), "reason": "requested on the recipient page"})
        transaction.on_commit(lambda: recipient_retest_task.delay(run.pk, letter.pk))
    return run


@shared_task(name="letters.recipient_retest", autoretry_for=(DatabaseError,), max_retries=3,
             retry_backoff=True)
def recipient_retest_task(run_id: int, letter_id: int) -> str:
    """Probe the run's hosts (a letter's few) in this worker, then record who closed theirs.

    Safe to run twice: a finished run is not probed again and the outcome is recorded once.
    """
    run = ProbeRun.objects.select_related("campaign").filter(pk=run_id).first()
    letter = Letter.objects.filter(pk=letter_id).first()
    if run is None or letter is None:
        return "gone"
    run = run_probe_run(run)
    recorded = record_self_service_outcome(letter, run)
    return f"{run.summary_line} self_service_remediated={recorded}"


def record_self_service_outcome(letter: Letter, run: ProbeRun) -> int:
    """After a page re-test: mark each host it remediated as self-reported and verified.

    Idempotent (a redelivered task records nothing twice). Returns how many were recorded.
    """
    recorded = 0
    host_ids = [link.host_id for link in letter_links(letter) if link.host_id in set(run.host_ids)]
    closed_by_run = set(
        AuditEvent.objects.filter(
            action="host.transition", object_type="host",
            object_id__in=[str(i) for i in host_ids], data__run=run.pk,
            data__to=host_states.REMEDIATED,
        ).values_list("object_id", flat=True)
    )
    already = set(
        AuditEvent.objects.filter(action="host.self_service_remediated", data__run=run.pk)
        .values_list("object_id", flat=True)
    )
    for host in Host.objects.filter(pk__in=host_ids).order_by("id"):
        if str(host.pk) in closed_by_run and str(host.pk) not in already:
            record("host.self_service_remediated", campaign_id=letter.campaign_id, obj=host,
                   data={"letter": letter.pk, "run": run.pk, "self_reported": True,
                         "verified": True, "ip": host.ip})
            recorded += 1
    return recorded


# -- what the page shows of a re-test -------------------------------------------------------

def run_for_letter(letter: Letter, run_id: int) -> ProbeRun | None:
    """The self-service probe run `run_id` if this letter's page started it, else None."""
    started_here = AuditEvent.objects.filter(
        action=RETEST_ACTION, object_type="letter", object_id=str(letter.pk),
        data__run=run_id).exists()
    if not started_here:
        return None
    return ProbeRun.objects.filter(pk=run_id, campaign_id=letter.campaign_id).first()


def run_hosts(letter: Letter, run: ProbeRun) -> list[dict]:
    """Per host of the run (all of them this letter's): its address, state and verdict."""
    allowed = {link.host_id: link.host for link in letter_links(letter)}
    verdicts: dict[int, set[str]] = {}
    for host_id, verdict in ProbeResult.objects.filter(
            run=run, host_id__in=list(allowed)).values_list("host_id", "verdict"):
        verdicts.setdefault(host_id, set()).add(verdict)
    out = []
    for host_id in run.host_ids:
        host = allowed.get(host_id)
        if host is None:
            continue
        seen = verdicts.get(host_id, set())
        # No results yet (the run is still going): no verdict to show.
        verdict = overall_verdict(seen) if seen else ""
        out.append({"ip": host.ip, "state": host.state, "verdict": verdict})
    return out
