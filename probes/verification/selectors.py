"""Reads about probes, for campaign_status/show_host (JSON) and the pages."""

from __future__ import annotations

from django.db.models import Count, Max

from campaign.models import Campaign, Host
from probes.verification.base import VERDICTS
from probes.verification.models import ProbeResult, ProbeRun


def _latest_ids(results):
    """Ids of the newest result per host × check × port."""
    return (
        results.values("host_id", "check_name", "port")
        .annotate(latest=Max("id"))
        .values("latest")
    )


def probe_counts(campaign: Campaign) -> dict:
    """`{"by_verdict": {verdict: n}}` over the latest result of every host × check × port."""
    latest = _latest_ids(ProbeResult.objects.filter(host__campaign=campaign))
    rows = (
        ProbeResult.objects.filter(id__in=latest)
        .values("verdict")
        .annotate(n=Count("id"))
    )
    by_verdict = dict.fromkeys(VERDICTS, 0)
    by_verdict.update({row["verdict"]: row["n"] for row in rows})
    return {"by_verdict": by_verdict}


def host_probes(host: Host) -> list[dict]:
    """The latest result per check and port: `[{"check", "port", "verdict", "variant"}]`."""
    latest = _latest_ids(ProbeResult.objects.filter(host=host))
    return [
        {"check": r.check_name, "port": r.port, "verdict": r.verdict, "variant": r.variant}
        for r in ProbeResult.objects.filter(id__in=latest).order_by("check_name", "port")
    ]


def host_probe_history(host: Host, *, limit: int = 50) -> list[ProbeResult]:
    """Every stored result of a host, newest first, transcripts included (the host page)."""
    # No join to the run: its host_ids list can be megabytes per row (template needs run_id).
    return list(ProbeResult.objects.filter(host=host).order_by("-id")[:limit])


def latest_run(campaign: Campaign) -> ProbeRun | None:
    return (
        ProbeRun.objects.filter(campaign=campaign).defer("host_ids")
        .order_by("-created_at", "-id").first()
    )


def run_progress(run: ProbeRun) -> dict:
    """What a progress bar polls: status, counts, and the summary by verdict."""
    return {
        "shown": run.shown_counts(),
        "id": run.pk,
        "status": run.status,
        "total": run.total,
        "done": run.done,
        "percent": run.progress_percent,
        "by_verdict": run.by_verdict,
        "error": run.error,
    }


def run_for(campaign: Campaign, pk: int) -> ProbeRun:
    """A run of this campaign; 404 for another campaign's run (no existence leak)."""
    from django.http import Http404

    run = (
        ProbeRun.objects.select_related("created_by").defer("host_ids")
        .filter(campaign=campaign, pk=pk).first()
    )
    if run is None:
        raise Http404("no such probe run")
    return run


def run_results(run: ProbeRun, *, verdict: str = ""):
    """A run's results for its page, host order; transcripts stay behind (the host page has
    them), so a page of 50 rows reads 50 small rows, not 50 × 16 KiB."""
    qs = ProbeResult.objects.filter(run=run)
    if verdict:
        qs = qs.filter(verdict=verdict)
    # (run, host) is indexed: the page is a range read plus an incremental sort on id.
    return (
        qs.select_related("host")
        .only("id", "run_id", "check_name", "port", "verdict", "variant", "error",
              "started_at", "duration_ms", "host__id", "host__ip", "host__state")
        .order_by("host_id", "id")
    )
