"""The one status-JSON view every job's progress box polls (imports, probe and contact runs)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from campaign import selectors
from campaign.jobs import Job
from campaign.models import Campaign
from campaign.views import require_perm

# A job of this campaign by pk, 404 for any other (each job's own selector: what it joins and
# defers is its business; the campaign check is the access rule).
JobLookup = Callable[[Campaign, int], Job]


@require_GET
@require_perm("view_campaign")
def job_status(request: HttpRequest, slug: str, pk: int, *, lookup: JobLookup) -> JsonResponse:
    # campaign_for is the access check: another agency's campaign is a 404, like its pages.
    campaign = selectors.campaign_for(request.user, slug)
    response = JsonResponse(lookup(campaign, pk).status_data())
    response["Cache-Control"] = "no-store"
    return response
