"""Probe runs and results (verification that a host is open)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from campaign.jobs import Job
from probes.verification import labels
from probes.verification.base import CHECKS, ERROR, VERDICTS

__all__ = ["ProbeRun", "ProbeResult"]

# ProbeResult.details["refused"] of hosts that lab-only mode (PROBE_LAB_ONLY) kept the probes
# away from: outbound.TargetRefused's code.
LAB_ONLY = "lab_only"


class ProbeRun(Job):
    """One batch of hosts probed for a campaign, with its progress and summary."""

    detail_url_name = "probe_run_detail"
    status_url_name = "probe_run_status"
    title = "Probe run"
    progress_label = "Hosts probed"
    progress_unit = "host"
    progress_verb = "probed"
    counts_class = "verdict-counts"

    campaign = models.ForeignKey(
        "campaign.Campaign", on_delete=models.CASCADE, related_name="probe_runs"
    )
    reason = models.CharField(max_length=40, default="manual", help_text="manual, reprobe, …")
    state_filter = models.CharField(max_length=20, blank=True)
    # The hosts chosen when the run was started: a retried chunk probes exactly these, even
    # if probing has moved them to other states meanwhile.
    host_ids = models.JSONField(default=list, blank=True)
    total = models.PositiveIntegerField(default=0, help_text="hosts in the run")
    done = models.PositiveIntegerField(default=0, help_text="hosts probed so far")
    checks_done = models.PositiveIntegerField(default=0)
    # Hosts by their overall verdict (open if any check was open, …).
    open_count = models.PositiveIntegerField(default=0)
    not_open_count = models.PositiveIntegerField(default=0)
    unreachable_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"probe run #{self.pk} of {self.campaign_id}"

    @property
    def progress_done(self) -> int:
        return self.done

    @property
    def progress_total(self) -> int:
        return self.total

    @property
    def by_verdict(self) -> dict[str, int]:
        return {
            "open": self.open_count,
            "not_open": self.not_open_count,
            "unreachable": self.unreachable_count,
            "error": self.error_count,
        }

    @property
    def summary_line(self) -> str:
        counts = " ".join(f"{k}={v}" for k, v in self.by_verdict.items())
        return f"probed={self.done} {counts}"

    def refused_outside_lab(self) -> int:
        """Hosts counted as `error` only because lab-only mode refused to probe them."""
        if not self.error_count or not settings.PROBE_LAB_ONLY:
            # Only lab-only mode (the demo, labs) refuses hosts as outside the lab; elsewhere
            # the pages cost no extra query for it.
            return 0
        return (
            ProbeResult.objects.filter(run=self, verdict=ERROR, details__refused=LAB_ONLY)
            .values("host_id").distinct().count()
        )

    def shown_counts(self) -> dict[str, int]:
        """Hosts by verdict as the pages show them: `error` without the hosts refused as
        outside the lab, which have their own count (the CLI line keeps the four verdicts)."""
        refused = self.refused_outside_lab()
        shown = dict(self.by_verdict)
        shown[ERROR] -= refused
        shown[labels.REFUSED_OUTSIDE_LAB] = refused
        return shown

    @property
    def count_tiles(self) -> list[dict]:
        return labels.verdict_tiles(self.by_verdict, self.shown_counts(),
                                    lab_only=settings.PROBE_LAB_ONLY)

    def extra_status_data(self) -> dict:
        return {"shown": self.shown_counts(), "by_verdict": self.by_verdict,
                "checks_done": self.checks_done}


class ProbeResult(models.Model):
    """One check of one host on one port: evidence, kept forever (never overwritten)."""

    run = models.ForeignKey(ProbeRun, on_delete=models.CASCADE, related_name="results")
    host = models.ForeignKey("campaign.Host", on_delete=models.CASCADE, related_name="probes")
    # Not `check`: that name would shadow Model.check(), Django's system-check hook.
    check_name = models.CharField(max_length=20, choices=[(c, c) for c in CHECKS])
    port = models.PositiveIntegerField()
    verdict = models.CharField(max_length=12, choices=[(v, v) for v in VERDICTS])
    variant = models.CharField(max_length=60, blank=True)
    transcript = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["host", "check_name", "port", "id"]),
            models.Index(fields=["run", "host"]),
            # A run's page filtered by verdict: its COUNT and its page (ordered by host, id)
            # are index-only range reads, not a scan of every result (bench/pages_bench.py).
            models.Index(fields=["run", "verdict", "host", "id"]),
        ]

    def __str__(self) -> str:
        return f"{self.host_id} {self.check_name}:{self.port} {self.verdict}"
