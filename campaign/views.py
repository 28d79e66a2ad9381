"""Staff pages. Thin: check access, validate input, call one service or selector, render."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from campaign import agencies, automation, dashboard, selectors
from campaign.forms import HostFilterForm, ImportForm
from campaign.imports import create_import
from campaign.roles import has_perm
from campaign.services import visible_campaigns
from campaign.tasks import queue_import
from campaign.uploads import FeedSizeLimit
from letters import pages as letter_pages
from probes.contacts import pages as contact_pages
from probes.forms import ProbeRunForm
from probes.verification.selectors import host_probe_history, latest_run


def require_perm(codename: str) -> Callable:
    """Login, then the campaign permission: a role without it gets 403, whatever the UI shows."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not has_perm(request.user, codename):
                raise PermissionDenied(f"your role may not {codename.replace('_', ' ')}")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


@require_GET
@require_perm("view_campaign")
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = visible_campaigns(request.user).order_by("-created_at", "-id")
    return render(request, "campaign/campaign_list.html", {"campaigns": campaigns})


@require_GET
@require_perm("view_campaign")
def campaign_detail(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = selectors.campaign_for(request.user, slug)
    probe_run = latest_run(campaign)
    feeds = selectors.subscriptions(campaign)
    return render(request, "campaign/campaign_detail.html", {
        "campaign": campaign,
        "subscriptions": feeds,
        "failing_feeds": [sub for sub in feeds if sub.active and sub.failing],
        "automation": automation.policy(campaign),
        "may_automate": automation.may_change(request.user, campaign),
        **dashboard.dashboard_context(campaign),
        "imports": selectors.recent_imports(campaign),
        "probe_run": probe_run,
        "probe_run_finished": probe_run is None or probe_run.finished,
        "probe_form": ProbeRunForm() if has_perm(request.user, "run_probes") else None,
        **contact_pages.campaign_panel(request.user, campaign),
        **letter_pages.campaign_panel(request.user, campaign),
    })


# csrf_exempt only defers the check: the size limit must be in the upload handlers before
# anything reads the body, and the CSRF middleware would read it first. csrf_protect below
# checks the token as before.
@csrf_exempt
@require_http_methods(["GET", "POST"])
@require_perm("import_feed")
def import_create(request: HttpRequest, slug: str) -> HttpResponse:
    request.upload_handlers.insert(0, FeedSizeLimit(request))
    return _import_create(request, slug)


@csrf_protect
def _import_create(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = selectors.campaign_for(request.user, slug)
    agencies.require_lead(request.user, campaign)
    form = ImportForm(request.POST or None, request.FILES or None, campaign=campaign,
                      upload_refused=getattr(request, "oversized_upload", False))
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["upload"]
        source = upload.name if upload else form.cleaned_data["url"]
        try:
            feed_import = create_import(
                campaign=campaign,
                actor=request.user,
                source=source,
                fmt=form.cleaned_data["format"],
                kind=form.cleaned_data["kind"] or None,
                upload=upload,
            )
        except ValidationError as exc:
            form.add_service_error(exc)
        else:
            queue_import(feed_import)
            messages.success(request, f"Import #{feed_import.pk} of {source} queued.")
            return redirect("import_detail", slug=campaign.slug, pk=feed_import.pk)
    return render(request, "campaign/import_form.html", {"campaign": campaign, "form": form},
                  status=400 if form.errors else 200)


@require_GET
@require_perm("view_campaign")
def import_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = selectors.campaign_for(request.user, slug)
    feed_import = selectors.import_for(campaign, pk)
    finished = feed_import.finished
    issues_page = None
    if finished:
        paginator = Paginator(selectors.import_issues(feed_import), 50)
        issues_page = paginator.get_page(request.GET.get("page"))
    return render(request, "campaign/import_detail.html", {
        "campaign": campaign,
        "feed_import": feed_import,
        "finished": finished,
        "issues_page": issues_page,
        "may_import": has_perm(request.user, "import_feed"),
    })


@require_GET
@require_perm("view_campaign")
def host_list(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = selectors.campaign_for(request.user, slug)
    form = HostFilterForm(request.GET or None)
    page = None
    if not form.is_bound or form.is_valid():
        data = form.cleaned_data if form.is_bound else {}
        qs = selectors.filter_hosts(
            campaign,
            state=data.get("state") or "",
            kind=data.get("kind") or "",
            country=data.get("country") or "",
            ip=data.get("q"),
        )
        page = selectors.host_page(qs, after=data.get("after"), before=data.get("before"))
    # Paging links keep the filters and replace only the cursor.
    params = request.GET.copy()
    for key in ("after", "before"):
        params.pop(key, None)
    return render(request, "campaign/host_list.html", {
        "campaign": campaign,
        "form": form,
        "page": page,
        "filter_query": params.urlencode(),
    })


@require_GET
@require_perm("view_campaign")
def host_detail(request: HttpRequest, slug: str, ip: str) -> HttpResponse:
    campaign = selectors.campaign_for(request.user, slug)
    host = selectors.host_by_ip(campaign, ip)
    return render(request, "campaign/host_detail.html", {
        "campaign": campaign,
        "detail": selectors.host_detail(host),
        "probes": host_probe_history(host),
        **contact_pages.host_panel(request.user, host),
        **letter_pages.host_panel(host, request.user),
    })
