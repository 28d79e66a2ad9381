"""Agencies: their list and settings pages, for the admin role (the letter template editor,
linked from the list, is letters.template_views)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from campaign import agencies
from campaign.audit import record
from campaign.models import Agency
from campaign.views import require_perm
from letters.languages import LANGUAGE_NAMES, LANGUAGES
from letters.template_views import template_rows

# Only the admin role holds change_campaign (campaign.roles).
ADMIN_PERM = "change_campaign"
AGENCY_FIELDS = ("letterhead", "sender_email", "reply_to", "signature", "info_url",
                 "instructions_url", "default_language")
LANGUAGE_CHOICES = [(code, LANGUAGE_NAMES.get(code, code)) for code in LANGUAGES]


class AgencySettingsForm(forms.ModelForm):
    default_language = forms.ChoiceField(choices=LANGUAGE_CHOICES, label="Default language")
    info_url = forms.URLField(required=False, assume_scheme="https", label="Information page",
                              help_text="The agency's page about the operation")
    instructions_url = forms.URLField(required=False, assume_scheme="https",
                                      label="Instructions page",
                                      help_text="Step-by-step closing instructions")

    class Meta:
        model = Agency
        fields = AGENCY_FIELDS
        labels = {"sender_email": "Sender address", "reply_to": "Reply-to address",
                  "info_url": "Information page", "instructions_url": "Instructions page"}
        widgets = {"letterhead": forms.Textarea(attrs={"rows": 4}),
                   "signature": forms.Textarea(attrs={"rows": 3})}


# --- agencies ------------------------------------------------------------------------------


def _agencies_for(user):
    agency_id = agencies.viewer_agency_id(user)
    qs = Agency.objects.order_by("name")
    return qs if agency_id is None else qs.filter(pk=agency_id)


@require_GET
@require_perm(ADMIN_PERM)
def agency_list(request: HttpRequest) -> HttpResponse:
    return render(request, "agencies/agency_list.html", {
        "agencies": list(_agencies_for(request.user)),
        "templates": template_rows(request.user),
        "user_agency_bound": agencies.viewer_agency_id(request.user) is not None,
    })


@require_http_methods(["GET", "POST"])
@require_perm(ADMIN_PERM)
def agency_settings(request: HttpRequest, pk: int) -> HttpResponse:
    agency = _agencies_for(request.user).filter(pk=pk).first()
    if agency is None:
        raise Http404("no such agency")
    form = AgencySettingsForm(request.POST or None, instance=agency)
    if request.method == "POST" and form.is_valid():
        changed = [f for f in form.changed_data if f in AGENCY_FIELDS]
        if changed:
            form.save(commit=False).save(update_fields=changed)
            record("agency.update", actor=request.user, obj=agency,
                   data={"changed": changed})
            messages.success(request, f"Settings of {agency.name} saved.")
        else:
            messages.info(request, "Nothing changed.")
        return redirect("agency_settings", pk=agency.pk)
    return render(request, "agencies/agency_settings.html", {"agency": agency, "form": form},
                  status=400 if form.errors else 200)
