"""Probe-run pages. Thin, like campaign.views: check access, validate, call a service, render."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from campaign import agencies
from campaign import selectors as campaign_selectors
from campaign.views import require_perm
from probes.forms import ProbeRunForm
from probes.tasks import queue_probe_run
from probes.verification import selectors
from probes.verification.base import VERDICTS
from probes.verification.services import create_probe_run, select_hosts

RESULTS_PER_PAGE = 50


@require_http_methods(["GET", "POST"])
@require_perm("run_probes")
def probe_run_start(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the form with its options; POST: snapshot the hosts, queue the run, go watch it."""
    campaign = campaign_selectors.campaign_for(request.user, slug)
    agencies.require_lead(request.user, campaign)
    # Bound on every POST: the bare button posts no fields, which means "every host".
    form = ProbeRunForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        state = form.cleaned_data["state"] or None
        limit = form.cleaned_data["limit"]
        # Chosen here rather than inside the service so an empty choice is a form error
        # instead of a run that probes nothing.
        host_ids = select_hosts(campaign, state=state, limit=limit)
        if not host_ids:
            form.add_error(None, "No host of this campaign matches; there is nothing to probe.")
        else:
            run = create_probe_run(
                campaign, actor=request.user, state=state, limit=limit, host_ids=host_ids
            )
            queue_probe_run(run)
            messages.success(
                request, f"Probe run #{run.pk} of {run.total} host{'s' if run.total != 1 else ''}"
                " queued.")
            return redirect("probe_run_detail", slug=campaign.slug, pk=run.pk)
    return render(request, "probes/run_form.html", {"campaign": campaign, "form": form},
                  status=400 if form.errors else 200)


@require_GET
@require_perm("view_campaign")
def probe_run_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    run = selectors.run_for(campaign, pk)
    verdict = request.GET.get("verdict", "")
    if verdict not in VERDICTS:
        verdict = ""
    paginator = Paginator(selectors.run_results(run, verdict=verdict), RESULTS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "probes/run_detail.html", {
        "campaign": campaign,
        "run": run,
        "finished": run.finished,
        "verdict": verdict,
        "verdicts": VERDICTS,
        "results_page": page,
    })
