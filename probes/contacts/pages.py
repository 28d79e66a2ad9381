"""What the staff pages show about abuse contacts: each function reads a fixed, small number
of rows whatever the size of the campaign (no query per host, contact or entry)."""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.http import Http404

from campaign.agencies import viewer_agency_id
from campaign.models import Campaign, Host
from campaign.roles import has_perm
from probes.contacts import selectors, suppression
from probes.contacts.forms import ContactOverrideForm, ContactRunForm
from probes.contacts.models import Contact, ContactOverride, ContactRun, Suppression

SUPPRESSIONS_PER_PAGE = 100


def run_for(campaign: Campaign, pk: int) -> ContactRun:
    run = ContactRun.objects.select_related("created_by").filter(campaign=campaign, pk=pk).first()
    if run is None:
        raise Http404("no such contact run")
    return run


def campaign_panel(user, campaign: Campaign) -> dict:
    """The campaign page's contact-resolution card: the latest run and the start form.

    How many hosts have a contact comes from the page's host counts by state: counting
    contacts here would be a second scan of a million-host campaign.
    """
    run = selectors.latest_run(campaign)
    return {
        "contact_run": run,
        "contact_run_finished": run is None or run.finished,
        "contact_form": ContactRunForm() if has_perm(user, "resolve_contacts") else None,
    }


def host_panel(user, host: Host, *, form: ContactOverrideForm | None = None) -> dict:
    """The host page's contact card: the contact with its evidence, who overrode it, the form."""
    contact = (
        Contact.objects.select_related("network", "overridden_by").filter(host_id=host.pk).first()
    )
    overrides = list(
        ContactOverride.objects.filter(host_id=host.pk).select_related("created_by")[:20]
    )
    if form is None and has_perm(user, "resolve_contacts"):
        initial = {"email": contact.email} if contact and contact.email else {}
        form = ContactOverrideForm(initial=initial)
    suppression = None
    if contact is not None and contact.status == Contact.SUPPRESSED:
        suppression = selectors.suppression_for(contact.email)
    return {"contact": contact, "contact_overrides": overrides, "contact_override_form": form,
            "contact_suppression": suppression}


def reason_visible(user, entry: Suppression) -> bool:
    """Whether `user` may read an entry's reason: it may name another agency's letters."""
    agency_id = viewer_agency_id(user)
    return agency_id is None or entry.agency_id in (None, agency_id)


def suppression_page(*, query: str = "", page: str | int | None = None, user=None) -> Page:
    """Every entry, whoever made it: the list binds every agency's letters, so each agency
    sees what stops its own (with who made it); another agency's reasons stay hidden."""
    qs = Suppression.objects.select_related("created_by", "agency").order_by("value")
    if query:
        qs = qs.filter(value__icontains=query.strip().lower())
    entries = Paginator(qs, SUPPRESSIONS_PER_PAGE).get_page(page)
    entries.object_list = list(entries.object_list)
    for entry in entries.object_list:
        entry.reason_visible = reason_visible(user, entry)
        entry.removable = suppression.may_remove_suppression(user, entry)
    return entries
