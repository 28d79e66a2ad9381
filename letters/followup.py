"""Follow-ups: re-test notified hosts after the campaign's delay and act on what we find.

Closed → the probe run itself moves the host to `remediated` (with the date); still open →
a `Retest` that the next batch turns into a second notice (reviewed like any other letter);
no answer → inconclusive, tried again at the next follow-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F, Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaign import states as host_states
from campaign.audit import record
from campaign.models import Campaign, Host
from letters.models import ControlHost, Retest
from letters.selectors import open_evidence
from probes.verification.base import NOT_OPEN, OPEN, overall_verdict
from probes.verification.models import ProbeResult
from probes.verification.services import create_probe_run, run_probe_run


@dataclass
class FollowUpSummary:
    retested: int = 0
    remediated: int = 0
    still_open: int = 0
    # The control group (letters/holdout.py), re-tested alongside but kept out of the line.
    control_retested: int = 0
    control_remediated: int = 0

    @property
    def line(self) -> str:
        return f"retested={self.retested} remediated={self.remediated} still_open={self.still_open}"


def due_hosts(campaign: Campaign, *, now: datetime | None = None,
              ignore_delay: bool = False) -> list[int]:
    """Notified hosts whose last notice is older than the delay and not re-tested since."""
    now = now or timezone.now()
    qs = Host.objects.filter(campaign=campaign, state=host_states.NOTIFIED).annotate(
        last_notice=Coalesce(
            Max("letter_links__letter__sent_at", filter=Q(letter_links__dropped=False)),
            "state_changed_at",
        ),
        last_retest=Max("retests__at"),
    ).filter(Q(last_retest__isnull=True) | Q(last_retest__lt=F("last_notice")))
    if not ignore_delay:
        qs = qs.filter(last_notice__lte=now - timedelta(days=campaign.followup_delay_days))
    return list(qs.order_by("id").values_list("id", flat=True))


def control_due_hosts(campaign: Campaign, *, now: datetime | None = None,
                      ignore_delay: bool = False) -> list[int]:
    """Held-out hosts due a re-test, on the notified hosts' schedule.

    A notified host is re-tested `followup_delay_days` after its letter, and again that long
    after each further notice (which follows a still-open re-test). A control host's clock
    starts when the batch held it out and restarts at each re-test; once found closed it is
    done, like a remediated host. `ignore_delay` re-tests those never re-tested.
    """
    now = now or timezone.now()
    qs = ControlHost.objects.filter(campaign=campaign, remediated_at__isnull=True)
    if ignore_delay:
        qs = qs.filter(last_retest_at__isnull=True)
    else:
        qs = qs.annotate(clock=Coalesce("last_retest_at", "since")).filter(
            clock__lte=now - timedelta(days=campaign.followup_delay_days))
    return list(qs.order_by("host_id").values_list("host_id", flat=True))


def retest_hosts(campaign: Campaign, host_ids: list[int], *, actor=None,
                 progress: Callable | None = None) -> int:
    """The seam to the probes engine: probe these hosts now; returns the probe run's id."""
    run = create_probe_run(campaign, actor=actor, host_ids=host_ids, reason="follow_up")
    run_probe_run(run, progress)
    return run.pk


def run_follow_up(campaign: Campaign, *, now: datetime | None = None, ignore_delay: bool = False,
                  actor=None, progress: Callable | None = None) -> FollowUpSummary:
    ids = due_hosts(campaign, now=now, ignore_delay=ignore_delay)
    control_ids = control_due_hosts(campaign, now=now, ignore_delay=ignore_delay)
    summary = FollowUpSummary()
    if not ids and not control_ids:
        return summary
    # One probe run for both groups: the same checks, the same day, the same engine.
    run_id = retest_hosts(campaign, ids + control_ids, actor=actor, progress=progress)
    opened = set(
        ProbeResult.objects.filter(run_id=run_id, verdict=OPEN).values_list("host_id", flat=True)
    )
    evidence = open_evidence(opened, run_ids=[run_id]) if opened else {}
    after = dict(Host.objects.filter(pk__in=ids).values_list("id", "state"))
    at = timezone.now()
    retests = []
    for host_id in ids:
        if after.get(host_id) == host_states.REMEDIATED:
            outcome = Retest.REMEDIATED
            summary.remediated += 1
        elif host_id in opened:
            outcome = Retest.STILL_OPEN
            summary.still_open += 1
        else:
            outcome = Retest.INCONCLUSIVE
        summary.retested += 1
        retests.append(Retest(campaign=campaign, host_id=host_id, probe_run_id=run_id,
                              outcome=outcome, evidence=evidence.get(host_id, []), at=at))
    retests += _control_retests(campaign, control_ids, run_id, opened, evidence, at, summary)
    Retest.objects.bulk_create(retests)
    record("letters.follow_up", actor=actor, campaign_id=campaign.pk,
           data={"run": run_id, "retested": summary.retested,
                 "remediated": summary.remediated, "still_open": summary.still_open,
                 "control_retested": summary.control_retested,
                 "control_remediated": summary.control_remediated})
    return summary


def _control_retests(campaign: Campaign, host_ids: list[int], run_id: int, opened: set[int],
                     evidence: dict, at: datetime, summary: FollowUpSummary) -> list[Retest]:
    """Outcomes for control hosts, by the rule that remediates a notified host.

    A notified host is remediated only when seen answering and refusing (verdict not_open);
    a control host's state does not say so (it was never notified), so the verdict is read
    from the run's results and its `ControlHost.remediated_at` set at the same moment.
    """
    if not host_ids:
        return []
    verdicts: dict[int, set[str]] = {i: set() for i in host_ids}
    for host_id, verdict in ProbeResult.objects.filter(
            run_id=run_id, host_id__in=host_ids).values_list("host_id", "verdict"):
        verdicts[host_id].add(verdict)
    closed = [i for i in host_ids if overall_verdict(verdicts[i]) == NOT_OPEN]
    ControlHost.objects.filter(host_id__in=host_ids).update(last_retest_at=at)
    ControlHost.objects.filter(host_id__in=closed, remediated_at__isnull=True).update(
        remediated_at=at)
    retests = []
    for host_id in host_ids:
        if host_id in closed:
            outcome = Retest.REMEDIATED
            summary.control_remediated += 1
        elif host_id in opened:
            outcome = Retest.STILL_OPEN
        else:
            outcome = Retest.INCONCLUSIVE
        summary.control_retested += 1
        retests.append(Retest(campaign=campaign, host_id=host_id, probe_run_id=run_id,
                              outcome=outcome, evidence=evidence.get(host_id, []), at=at))
    return retests
