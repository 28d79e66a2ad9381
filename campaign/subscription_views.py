"""The feed subscriptions page: list, subscribe, pause/resume, fetch now, each one's history."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaign import agencies, selectors
from campaign.forms import SubscriptionForm
from campaign.roles import has_perm
from campaign.subscriptions import set_active, subscribe
from campaign.tasks import queue_feed_fetch
from campaign.views import require_perm


@require_http_methods(["GET", "POST"])
@require_perm("view_campaign")
def feed_list(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = selectors.campaign_for(request.user, slug)
    may_subscribe = has_perm(request.user, "import_feed")
    form = None
    if may_subscribe:
        form = SubscriptionForm(request.POST or None, campaign=campaign,
                                may_attach_secret=has_perm(request.user, "change_campaign"))
    if request.method == "POST":
        if form is None:
            raise PermissionDenied(_("your role may not import feeds"))
        agencies.require_lead(request.user, campaign)
        if form.is_valid():
            data = form.cleaned_data
            try:
                subscription = subscribe(
                    campaign=campaign, url=data["url"], fmt=data["format"],
                    kind=data["kind"] or None, every=data["every"].strip() or None,
                    cron=data["cron"].strip() or None,
                    auth_secret=data.get("auth_secret", "").strip(), actor=request.user)
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error(None, message)
            else:
                messages.success(request, _("Subscribed to %(url)s; first fetch within a "
                                            "minute.") % {"url": subscription.url})
                return redirect("feed_list", slug=campaign.slug)
    return render(request, "campaign/feed_list.html", {
        "campaign": campaign, "form": form,
        "subscriptions": selectors.subscriptions(campaign),
    }, status=400 if form is not None and form.errors else 200)


@require_GET
@require_perm("view_campaign")
def feed_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = selectors.campaign_for(request.user, slug)
    subscription = selectors.subscription_for(campaign, pk)
    return render(request, "campaign/feed_detail.html", {
        "campaign": campaign, "subscription": subscription,
        "fetches": selectors.subscription_fetches(subscription),
        "may_change": has_perm(request.user, "import_feed"),
    })


@require_POST
@require_perm("import_feed")
def feed_action(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = selectors.campaign_for(request.user, slug)
    subscription = selectors.subscription_for(campaign, pk)
    agencies.require_lead(request.user, campaign)
    action = request.POST.get("action", "")
    if action in ("pause", "resume"):
        set_active(subscription, active=action == "resume", actor=request.user)
        messages.success(request, _("Paused.") if action == "pause" else _("Resumed."))
    elif action == "fetch":
        if not subscription.active:
            messages.error(request, _("Resume the subscription before fetching it."))
        else:
            queue_feed_fetch(subscription.pk)
            messages.success(request, _("Fetch queued; the history below shows its outcome."))
    else:
        messages.error(request, _("Unknown action."))
    return redirect("feed_detail", slug=campaign.slug, pk=subscription.pk)
