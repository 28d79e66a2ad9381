"""Contact pages: start a resolution run and watch it, set a contact by hand, the
do-not-contact list. Thin, like campaign.views: check access, validate, call a service."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from campaign import agencies
from campaign import selectors as campaign_selectors
from campaign.roles import has_perm
from campaign.views import require_perm
from probes.contacts import errors, overrides, pages, resolving, suppression, tasks
from probes.contacts.forms import (
    ContactOverrideForm,
    ContactRunForm,
    SuppressionForm,
    SuppressionRemoveForm,
)


@require_http_methods(["GET", "POST"])
@require_perm("resolve_contacts")
def contact_run_start(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    agencies.require_lead(request.user, campaign)
    form = ContactRunForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        run = resolving.create_contact_run(campaign, mode=form.cleaned_data["mode"],
                                          actor=request.user)
        tasks.queue_contact_run(run)
        messages.success(request, f"Contact resolution #{run.pk} queued.")
        return redirect("contact_run_detail", slug=campaign.slug, pk=run.pk)
    return render(request, "contacts/run_form.html", {"campaign": campaign, "form": form},
                  status=400 if form.errors else 200)


@require_GET
@require_perm("view_campaign")
def contact_run_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    run = pages.run_for(campaign, pk)
    return render(request, "contacts/run_detail.html", {
        "campaign": campaign,
        "run": run,
        "finished": run.finished,
    })


@require_http_methods(["GET", "POST"])
@require_perm("resolve_contacts")
def contact_set(request: HttpRequest, slug: str, ip: str) -> HttpResponse:
    """Override a host's contact (the host page embeds this form; errors come back here)."""
    campaign = campaign_selectors.campaign_for(request.user, slug)
    host = campaign_selectors.host_by_ip(campaign, ip)
    agencies.require_routed(request.user, campaign, host)
    form = ContactOverrideForm(request.POST) if request.method == "POST" else None
    if form is not None and form.is_valid():
        data = form.cleaned_data
        try:
            contact = overrides.set_contact(
                campaign=campaign, ip=host.ip, email=data["email"], actor=request.user,
                reason=data["reason"], language=data["language"] or None,
            )
        except errors.ContactError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Contact of {host.ip} set to {contact.email} "
                                      f"(letters in {contact.language}).")
            return redirect(reverse("host_detail", args=[campaign.slug, host.ip]) + "#contact")
    context = {"campaign": campaign, "host": host, **pages.host_panel(request.user, host,
                                                                       form=form)}
    return render(request, "contacts/contact_form.html", context,
                  status=400 if form is not None and form.errors else 200)


@require_http_methods(["GET", "POST"])
@require_perm("view_campaign")
def suppression_list(request: HttpRequest) -> HttpResponse:
    may_edit = has_perm(request.user, "resolve_contacts")
    form = None
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied("your role may not edit the do-not-contact list")
        if "remove" in request.POST:
            return _suppression_remove(request)
        form = SuppressionForm(request.POST)
        if form.is_valid():
            try:
                entry = suppression.suppress(value=form.cleaned_data["value"], actor=request.user,
                                          reason=form.cleaned_data["reason"])
            except errors.ContactError as exc:
                form.add_error("value", str(exc))
            else:
                messages.success(request, f"{entry.value} is on the do-not-contact list.")
                return redirect("suppression_list")
    elif may_edit:
        form = SuppressionForm()
    # PostgreSQL refuses NUL (and a search for control characters finds nothing anyway).
    query = "".join(ch for ch in request.GET.get("q", "") if ch.isprintable())[:254]
    return render(request, "contacts/suppression_list.html", {
        "form": form,
        "query": query,
        "entries": pages.suppression_page(query=query, page=request.GET.get("page"),
                                          user=request.user),
    }, status=400 if form is not None and form.errors else 200)


def _suppression_remove(request: HttpRequest) -> HttpResponse:
    """The row's "Remove…" form: a reason and a ticked confirmation, then the service."""
    form = SuppressionRemoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "To remove an entry, say why and tick the confirmation.")
        return redirect("suppression_list")
    try:
        done = suppression.unsuppress(value=form.cleaned_data["value"], actor=request.user,
                                   reason=form.cleaned_data["reason"])
    except errors.ContactError as exc:
        messages.error(request, str(exc))
        return redirect("suppression_list")
    messages.success(request, f"{done.value} is off the do-not-contact list; "
                              f"{done.hosts} host{'s' if done.hosts != 1 else ''} "
                              "may be written to again.")
    return redirect("suppression_list")
