"""Forms for the contact pages: input checking only; the services do the work (and re-check)."""

from __future__ import annotations

from django import forms

from campaign.languages import LANGUAGES, NAMES
from probes.contacts.models import ContactRun

LANGUAGE_CHOICES = [(code, f"{NAMES[code]} ({code})") for code in LANGUAGES]


class ContactRunForm(forms.Form):
    mode = forms.ChoiceField(
        label="Hosts to resolve",
        choices=[
            (ContactRun.PENDING, "Verified open hosts without a fresh contact"),
            (ContactRun.ALL, "Every host of the campaign (look every one up again)"),
        ],
        initial=ContactRun.PENDING,
    )


class ContactOverrideForm(forms.Form):
    email = forms.EmailField(label="Abuse contact e-mail", max_length=254)
    language = forms.ChoiceField(
        label="Letter language", required=False,
        choices=[("", "Keep / from the contact's country")] + LANGUAGE_CHOICES,
    )
    reason = forms.CharField(
        label="Reason", max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Kept with the contact and in the audit log, e.g. “the ISP asked us to write "
                  "to noc@ instead”.",
    )


class SuppressionForm(forms.Form):
    value = forms.CharField(
        label="Address or domain", max_length=254,
        help_text="An e-mail address, or a domain to cover the domain and its subdomains.",
    )
    reason = forms.CharField(label="Reason", max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 2}))


class SuppressionRemoveForm(forms.Form):
    value = forms.CharField(widget=forms.HiddenInput, max_length=254)
    reason = forms.CharField(label="Why remove it", max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 2}))
    confirm = forms.BooleanField(
        label="Yes: letters may go to this address (or domain) again", required=True)
