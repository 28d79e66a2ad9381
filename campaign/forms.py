"""Forms for the staff pages: input checking only; the work happens in services."""

from __future__ import annotations

from django import forms

from campaign import states
from campaign.models import Feed
from campaign.selectors import parse_ip_query

KIND_CHOICES = [
    ("", "Campaign default"),
    ("relay", "Open mail relay"),
    ("proxy", "Open proxy"),
]


class ImportForm(forms.Form):
    upload = forms.FileField(
        label="Feed file", required=False,
        help_text="A blocklist file: one IP per line, ip:port, Shadowserver CSV, DROP or netset.",
    )
    url = forms.URLField(
        label="…or a feed URL", required=False, max_length=2000, assume_scheme="https",
        help_text="Fetched by the server; internal addresses and oversized bodies are refused.",
    )
    format = forms.ChoiceField(label="Format", choices=Feed.FORMAT_CHOICES, initial="auto")
    kind = forms.ChoiceField(
        label="Suspected of", choices=KIND_CHOICES, required=False,
        help_text="Campaign default works when the campaign has a single kind.",
    )

    def clean(self):
        data = super().clean()
        has_file = bool(data.get("upload"))
        has_url = bool(data.get("url"))
        if has_file == has_url and not self.errors:
            raise forms.ValidationError("Give either a file or a URL (one of them, not both).")
        url = data.get("url") or ""
        if url and not url.lower().startswith(("http://", "https://")):
            self.add_error("url", "Only http:// and https:// URLs can be fetched.")
        return data


class HostFilterForm(forms.Form):
    state = forms.ChoiceField(
        label="State", required=False,
        choices=[("", "Any state")]
        + [(s, states.HOST_STATE_LABELS[s]) for s in states.HOST_STATES],
    )
    kind = forms.ChoiceField(
        label="Kind", required=False,
        choices=[("", "Any kind"), ("relay", "Open mail relay"), ("proxy", "Open proxy")],
    )
    country = forms.RegexField(
        label="Country", required=False, regex=r"^[A-Za-z]{2}$", max_length=2,
        error_messages={"invalid": "Use a two-letter country code, e.g. DE."},
    )
    q = forms.CharField(label="IP or network", required=False, max_length=50)
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    before = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def clean_q(self):
        text = self.cleaned_data.get("q", "").strip()
        if not text:
            return None
        try:
            return parse_ip_query(text)
        except ValueError:
            raise forms.ValidationError(
                "Enter an IP address (192.0.2.7) or a network (192.0.2.0/24)."
            ) from None

    def clean_country(self):
        return (self.cleaned_data.get("country") or "").upper()
