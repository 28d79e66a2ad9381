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
from letters.models import Retest
from letters.selectors import open_evidence


@dataclass
class FollowUpSummary:
    retested: int = 0
    remediated: int = 0
    still_open: int = 0

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


def retest_hosts(campaign: Campaign, host_ids: list[int], *, actor=None,
                 progress: Callable | None = None) -> int:
    """The seam to the probes engine: probe these hosts now; returns the probe run's id."""
    from probes.verification.services import execute_probe_run, start_probe_run

    run = start_probe_run(campaign, actor=actor, host_ids=host_ids, reason="follow_up")
    execute_probe_run(run, progress)
    return run.pk


def run_follow_up(campaign: Campaign, *, now: datetime | None = None, ignore_delay: bool = False,
                  actor=None, progress: Callable | None = None) -> FollowUpSummary:
    from probes.verification.base import OPEN
    from probes.verification.models import ProbeResult

    ids = due_hosts(campaign, now=now, ignore_delay=ignore_delay)
    summary = FollowUpSummary()
    if not ids:
        return summary
    run_id = retest_hosts(campaign, ids, actor=actor, progress=progress)
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
    Retest.objects.bulk_create(retests)
    record("letters.follow_up", actor=actor, campaign_id=campaign.pk,
           data={"run": run_id, "retested": summary.retested,
                 "remediated": summary.remediated, "still_open": summary.still_open})
    return summary
