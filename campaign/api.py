"""The JSON API, `/api/v1/`: for scripts and pipelines, with the pages' permission checks.

Each call carries `Authorization: Bearer <token>` (tokens: campaign.tokens, made on the "API
tokens" page) and acts as the token's user: their role decides what they may do (403), their
agency which campaigns exist for them (404), exactly as on the pages; starting campaign-wide
work is the lead agency's. Calls are counted per token (API_RATE_LIMIT per minute; 429 with
Retry-After past it). The OpenAPI schema is at /api/v1/openapi.json, its docs at /api/v1/docs.
Session cookies are not accepted: a page cannot be made to call the API (no CSRF surface).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from ninja import File, Form, NinjaAPI, Query, Schema, Status
from ninja.files import UploadedFile
from ninja.security import HttpBearer

from campaign import agencies, automation, kinds, reports, selectors, states
from campaign.imports import create_import
from campaign.models import Campaign
from campaign.ratelimit import RateLimited, count_hit
from campaign.roles import has_perm
from campaign.services import visible_campaigns
from campaign.tasks import queue_import
from campaign.tokens import user_for_token
from campaign.uploads import FeedSizeLimit
from letters import effect, report
from probes.contacts import pages as contact_pages
from probes.contacts import resolving
from probes.contacts import tasks as contact_tasks
from probes.contacts.models import ContactRun
from probes.tasks import queue_probe_run
from probes.verification import selectors as probe_selectors
from probes.verification.services import create_probe_run, select_hosts


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = user_for_token(token)
        if user is None:
            return None
        count_hit("api", "token", user.api_token.prefix, limit=settings.API_RATE_LIMIT,
                  window=60)
        request.user = user
        if request.method == "POST":
            # Before the body is read: a file over FEED_MAX_BYTES is dropped, not spooled.
            request.upload_handlers.insert(0, FeedSizeLimit(request))
        return user


api = NinjaAPI(
    title="Secure Your Server API", version="1", urls_namespace="api_v1", auth=TokenAuth(),
    description=__doc__,
)


@api.exception_handler(RateLimited)
def _rate_limited(request, exc: RateLimited):
    response = api.create_response(
        request, {"detail": f"too many requests; try again in {exc.retry_after} s"},
        status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return api.create_response(request, {"detail": str(exc) or "forbidden"}, status=403)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, {"detail": str(exc) or "not found"}, status=404)


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    return api.create_response(request, {"detail": "; ".join(exc.messages)}, status=400)


def _campaign(request: HttpRequest, slug: str, perm: str = "view_campaign", *,
              lead: bool = False) -> Campaign:
    if not has_perm(request.user, perm):
        raise PermissionDenied(f"your role may not {perm.replace('_', ' ')}")
    campaign = selectors.campaign_for(request.user, slug)
    if lead:
        agencies.require_lead(request.user, campaign)
    return campaign


def _job(job, url_name: str, slug: str) -> dict:
    data = job.status_data()
    data["url"] = f"/api/v1/campaigns/{slug}/{url_name}/{job.pk}"
    return data


class CampaignOut(Schema):
    slug: str
    name: str
    agency: str
    kinds: list[str]
    status: str
    automation: dict[str, bool]


class ProbeRunIn(Schema):
    state: str | None = None
    limit: int | None = None


class ContactRunIn(Schema):
    mode: str = ContactRun.PENDING


# --- campaigns ---------------------------------------------------------------------------


@api.get("/campaigns", response=list[CampaignOut], summary="Campaigns you may see")
def list_campaigns(request):
    if not has_perm(request.user, "view_campaign"):
        raise PermissionDenied("your role may not view campaigns")
    return [
        {"slug": c.slug, "name": c.name, "agency": c.agency.name, "kinds": c.kind_names,
         "status": c.status, "automation": automation.policy(c)}
        for c in visible_campaigns(request.user).order_by("-created_at", "-id")[:500]
    ]


@api.get("/campaigns/{slug}", summary="Campaign status (as `campaign_status --json`)")
def campaign_status(request, slug: str):
    campaign = _campaign(request, slug)
    return {**reports.campaign_status(campaign), "automation": automation.policy(campaign)}


@api.get("/campaigns/{slug}/report",
         summary="The campaign report: per country and language; the effect against control")
def campaign_report(request, slug: str):
    campaign = _campaign(request, slug)
    own = agencies.viewer_agency_id(request.user)
    if own is not None and own != campaign.agency_id:
        # A partner agency's staff: their agency's letters only, as its report would show.
        agency = campaign.partners.get(pk=own)
        return {"rows": report.campaign_report(campaign, agency), "effect": None}
    return {"rows": report.campaign_report(campaign), "effect": effect.campaign_effect(campaign)}


# --- imports -----------------------------------------------------------------------------


@api.post("/campaigns/{slug}/imports", response={202: dict},
          summary="Start an import of a file (multipart `file`) or a URL (`url`)")
def start_import(request, slug: str, file: UploadedFile | None = File(None),  # noqa: B008
                 url: str = Form(""), format: str = Form("auto"),  # noqa: A002, B008
                 kind: str = Form("")):  # noqa: B008
    campaign = _campaign(request, slug, "import_feed", lead=True)
    if getattr(request, "oversized_upload", False):
        raise ValidationError(f"the file is over the {settings.FEED_MAX_BYTES}-byte limit")
    if bool(file) == bool(url.strip()):
        raise ValidationError("give either a file or a url (one of them)")
    feed_import = create_import(campaign=campaign, actor=request.user,
                                source=file.name if file else url.strip(), fmt=format,
                                kind=kind or None, upload=file)
    queue_import(feed_import)
    return Status(202, _job(feed_import, "imports", campaign.slug))


@api.get("/campaigns/{slug}/imports/{pk}", summary="An import's status and counts")
def import_status(request, slug: str, pk: int):
    campaign = _campaign(request, slug)
    return _job(selectors.import_for(campaign, pk), "imports", campaign.slug)


# --- hosts -------------------------------------------------------------------------------


class HostFilter(Schema):
    state: str = ""
    kind: str = ""
    country: str = ""
    q: str = ""
    after: int | None = None
    limit: int = 100


@api.get("/campaigns/{slug}/hosts",
         summary="Hosts, filtered; pages by `after` (the `next` of the previous page)")
def list_hosts(request, slug: str, filters: HostFilter = Query(...)):  # noqa: B008
    campaign = _campaign(request, slug)
    if filters.state and filters.state not in states.HOST_STATES:
        raise ValidationError(f"unknown state {filters.state!r}")
    if filters.kind and filters.kind not in ("relay", "proxy"):
        raise ValidationError(f"unknown kind {filters.kind!r} (relay or proxy)")
    try:
        ip = selectors.parse_ip_query(filters.q) if filters.q.strip() else None
    except ValueError:
        raise ValidationError(f"{filters.q!r} is not an IP address or network") from None
    qs = selectors.filter_hosts(campaign, state=filters.state, kind=filters.kind,
                                country=filters.country, ip=ip)
    page = selectors.host_page(qs, after=filters.after, size=max(1, min(filters.limit, 1000)))
    return {
        "hosts": [{"ip": h.ip, "state": h.state, "kinds": kinds.kind_names(h.kinds),
                   "country": h.country or None, "asn": h.asn,
                   "last_seen": h.last_seen.isoformat()} for h in page.hosts],
        "next": page.next_after,
    }


@api.get("/campaigns/{slug}/hosts/{ip}",
         summary="One host with its evidence (as `show_host --json`)")
def host_detail(request, slug: str, ip: str):
    campaign = _campaign(request, slug)
    return reports.host_detail(selectors.host_by_ip(campaign, ip))


# --- probe and contact runs ----------------------------------------------------------------


@api.post("/campaigns/{slug}/probe-runs", response={202: dict},
          summary="Start a probe run (all hosts, or those in `state`, at most `limit`)")
def start_probe_run(request, slug: str, body: ProbeRunIn):
    campaign = _campaign(request, slug, "run_probes", lead=True)
    try:
        host_ids = select_hosts(campaign, state=body.state, limit=body.limit)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if not host_ids:
        raise ValidationError("no host of this campaign matches; there is nothing to probe")
    run = create_probe_run(campaign, actor=request.user, state=body.state, limit=body.limit,
                           host_ids=host_ids)
    queue_probe_run(run)
    return Status(202, _job(run, "probe-runs", campaign.slug))


@api.get("/campaigns/{slug}/probe-runs/{pk}", summary="A probe run's status and verdicts")
def probe_run_status(request, slug: str, pk: int):
    campaign = _campaign(request, slug)
    return _job(probe_selectors.run_for(campaign, pk), "probe-runs", campaign.slug)


@api.post("/campaigns/{slug}/contact-runs", response={202: dict},
          summary="Start a contact run (`pending`: verified hosts without a fresh contact; "
                  "`all`)")
def start_contact_run(request, slug: str, body: ContactRunIn):
    campaign = _campaign(request, slug, "resolve_contacts", lead=True)
    if body.mode not in (ContactRun.PENDING, ContactRun.ALL):
        raise ValidationError("mode is pending or all")
    run = resolving.create_contact_run(campaign, mode=body.mode, actor=request.user)
    contact_tasks.queue_contact_run(run)
    return Status(202, _job(run, "contact-runs", campaign.slug))


@api.get("/campaigns/{slug}/contact-runs/{pk}", summary="A contact run's status and counts")
def contact_run_status(request, slug: str, pk: int):
    campaign = _campaign(request, slug)
    return _job(contact_pages.run_for(campaign, pk), "contact-runs", campaign.slug)
