"""What every background job has in common: feed imports, probe runs, contact runs.

A job is a row a person (or the scheduler) creates, a worker (or a foreground command) runs,
and a page watches through its status JSON. Each job is named the same way in its own
module: `create_<job>` makes the row, `queue_<job>` hands it to Celery after commit, and
`run_<job>` does the work (the task and the foreground command both call it).

This module is part of the core: it must not import feature apps.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__ = ["Job"]


class Job(models.Model):
    """Abstract: status, timestamps, who started it, progress, error, summary line."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STATUS_CHOICES = [(QUEUED, "Queued"), (RUNNING, "Running"), (DONE, "Done"), (FAILED, "Failed")]
    FINISHED = (DONE, FAILED)

    # Each job's page and status JSON, by URL name (they take the campaign slug and the pk).
    detail_url_name = ""
    status_url_name = ""
    # Shown on the progress box: "Probe run #3", the <progress> label, "12 of 40 hosts probed".
    title = "Job"
    progress_label = "Progress"
    progress_unit = ""  # empty: the box shows the percentage only (an import's bytes)
    progress_verb = ""
    counts_class = ""  # a CSS class for the counters (probe verdicts are coloured)

    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=QUEUED)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    # --- hooks each job maps to its own columns ------------------------------------------

    @property
    def progress_done(self) -> int:
        raise NotImplementedError

    @property
    def progress_total(self) -> int | None:
        raise NotImplementedError

    @property
    def summary_line(self) -> str:
        """The line the command prints when the job is done (`lines=N added=N …`)."""
        raise NotImplementedError

    @property
    def count_tiles(self) -> list[dict]:
        """The progress box's counters: `{key, label, n, field}`, `field` a status-JSON key."""
        return []

    @property
    def error_text(self) -> str:
        """The error as the pages show it (a job may word it for people, not the CLI)."""
        return self.error

    def extra_status_data(self) -> dict:
        """The job's own keys in its status JSON, beside the shared ones."""
        return {}

    # --- shared behaviour ----------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def progress_percent(self) -> int:
        # 100 only once done: a run whose last host is recorded is not finished until the
        # runner says so, and a bar at 100 % that keeps "running" reads as stuck.
        if self.status == self.DONE:
            return 100
        total = self.progress_total
        if not total:
            return 0
        return min(99, int(100 * self.progress_done / total))

    def status_data(self) -> dict:
        """The status JSON the progress box polls (keys match its `data-field` attributes)."""
        percent = self.progress_percent
        data = {
            "id": self.pk,
            "status": self.status,
            "status_label": self.get_status_display(),
            "finished": self.finished,
            "done": self.progress_done,
            "total": self.progress_total,
            "percent": percent,
            "progress_percent": percent,
            "summary": self.summary_line,
            "error": self.error_text,
        }
        data.update(self.extra_status_data())
        return data

    def mark_failed(self, error: str) -> None:
        """Record the failure on the row (one UPDATE, whatever else the instance holds)."""
        now = timezone.now()
        type(self).objects.filter(pk=self.pk).update(
            status=self.FAILED, error=error[:2000], finished_at=now
        )
        self.status, self.error, self.finished_at = self.FAILED, error, now
