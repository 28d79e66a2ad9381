"""The "New campaign" page: the staff UI's `create_campaign`.

Same service and checks as the command (campaign.services.create_campaign, then
agencies.set_partners, in one transaction), so the slug rules, the permission and the audit
events are the command's. A user bound to an agency creates campaigns led by that agency and
picks no partners (sharing a campaign with another agency is for users bound to none).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from campaign import agencies, automation, selectors
from campaign.automation import set_policy
from campaign.models import Agency, Campaign
from campaign.services import create_campaign
from campaign.views import require_perm

KINDS_CHOICES = [
    ("relay,proxy", "Open mail relays and open proxies"),
    ("relay", "Open mail relays"),
    ("proxy", "Open proxies"),
]


class CampaignCreateForm(forms.Form):
    slug = forms.SlugField(
        label="Short name", max_length=Campaign._meta.get_field("slug").max_length,
        help_text="Letters, digits, hyphens and underscores; used in addresses and commands "
                  "(e.g. <code>oss-2026</code>). It cannot be changed later.",
    )
    name = forms.CharField(label="Title", required=False,
                           max_length=Campaign._meta.get_field("name").max_length,
                           help_text="Shown in the staff pages; the short name if left empty.")
    kinds = forms.ChoiceField(label="Looking for", choices=KINDS_CHOICES, initial="relay,proxy")
    agency = forms.ModelChoiceField(label="Lead agency", queryset=Agency.objects.none(),
                                    empty_label=None)
    partners = forms.ModelMultipleChoiceField(
        label="Partner agencies", queryset=Agency.objects.none(), required=False,
        help_text="A joint campaign: each partner writes to the hosts in its jurisdiction.",
    )

    def __init__(self, *args, own_agency: Agency | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if own_agency is not None:
            # Led by the user's own agency, whatever a crafted POST says; no partners.
            del self.fields["agency"], self.fields["partners"]
        else:
            self.fields["agency"].queryset = Agency.objects.order_by("name")
            self.fields["partners"].queryset = Agency.objects.order_by("name")

    def clean(self):
        data = super().clean()
        lead, partners = data.get("agency"), data.get("partners") or []
        if lead is not None and lead in partners:
            self.add_error("partners", f"{lead.name} leads the campaign and cannot also be a "
                                       "partner.")
        return data


@require_http_methods(["GET", "POST"])
@require_perm("add_campaign")
def campaign_create(request: HttpRequest) -> HttpResponse:
    own_id = agencies.viewer_agency_id(request.user)
    own = Agency.objects.get(pk=own_id) if own_id is not None else None
    form = CampaignCreateForm(request.POST or None, own_agency=own)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        lead = own or data["agency"]
        try:
            with transaction.atomic():
                campaign = create_campaign(slug=data["slug"], agency_name=lead.name,
                                           kinds=data["kinds"], name=data["name"].strip(),
                                           actor=request.user)
                if data.get("partners"):
                    agencies.set_partners(campaign=campaign,
                                          names=[a.name for a in data["partners"]],
                                          actor=request.user)
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            messages.success(request, f"Campaign {campaign.name} created.")
            return redirect("campaign_detail", slug=campaign.slug)
    return render(request, "campaign/campaign_form.html", {"form": form, "own_agency": own},
                  status=400 if form.errors else 200)


@require_POST
@require_perm("change_campaign")
def campaign_automation(request: HttpRequest, slug: str) -> HttpResponse:
    """The campaign page's automation switches (checkboxes: absent means off)."""
    campaign = selectors.campaign_for(request.user, slug)
    set_policy(campaign, actor=request.user,
               **{name: request.POST.get(name) == "on" for name in automation.SWITCHES})
    messages.success(request, "Automation saved.")
    return redirect(reverse("campaign_detail", args=[campaign.slug]) + "#automation")
