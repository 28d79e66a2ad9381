"""Forms for the staff pages: input checking only; the work happens in services."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaign import states
from campaign.kinds import kind_names
from campaign.models import Campaign, Feed
from campaign.selectors import parse_ip_query

KIND_LABELS = {"relay": _("Open mail relay"), "proxy": _("Open proxy")}


def too_large_message() -> str:
    return gettext("The file is larger than %(limit)s, the largest feed accepted.") % {
        "limit": filesizeformat(settings.FEED_MAX_BYTES)}


class ImportForm(forms.Form):
    """The import page. It offers only kinds that can work for its campaign.

    A campaign with one kind lends it ("campaign default"); one with both must be told, since
    a plain IP list says nothing about what its hosts are suspected of.
    """

    upload = forms.FileField(
        label=_("Feed file"), required=False,
        help_text=_("A blocklist file: one IP per line, ip:port, Shadowserver CSV, DROP or "
                    "netset."),
    )
    url = forms.URLField(
        label=_("…or a feed URL"), required=False, max_length=2000, assume_scheme="https",
        help_text=_("Fetched by the server; internal addresses and oversized bodies are "
                    "refused."),
    )
    format = forms.ChoiceField(label=_("Format"), choices=Feed.FORMAT_CHOICES, initial="auto")
    kind = forms.ChoiceField(label=_("Suspected of"), required=False)

    def __init__(self, *args, campaign: Campaign, upload_refused: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Set when the upload handler stopped reading a file over FEED_MAX_BYTES.
        self.upload_refused = upload_refused
        names = kind_names(campaign.kinds)
        field = self.fields["kind"]
        if len(names) == 1:
            (only,) = names
            field.choices = [
                ("", gettext("Campaign default (%(kind)s)") % {"kind": KIND_LABELS[only]}),
                (only, KIND_LABELS[only]),
            ]
        else:
            field.required = True
            field.choices = [("", gettext("Choose…"))] + [(n, KIND_LABELS[n]) for n in names]
            field.help_text = _("This campaign targets open relays and open proxies: say "
                                "which this feed lists.")
            field.error_messages["required"] = _(
                "Say whether this feed lists open mail relays or open proxies.")

    def clean(self):
        data = super().clean()
        if self.upload_refused:
            self.add_error("upload", too_large_message())
            return data
        upload = data.get("upload")
        if upload is not None and upload.size > settings.FEED_MAX_BYTES:
            self.add_error("upload", too_large_message())
        has_file = bool(upload)
        has_url = bool(data.get("url"))
        # An invalid URL is already reported (and missing from cleaned_data): don't add this.
        if has_file == has_url and not (self.has_error("upload") or self.has_error("url")):
            raise forms.ValidationError(
                gettext("Give either a file or a URL (one of them, not both)."))
        url = data.get("url") or ""
        if url and not url.lower().startswith(("http://", "https://")):
            self.add_error("url", gettext("Only http:// and https:// URLs can be fetched."))
        return data

    def add_service_error(self, exc: ValidationError) -> None:
        """Show a refusal of the import service in the page's words, not the CLI's."""
        for error in exc.error_list:
            if error.code == "too_large":
                self.add_error("upload", too_large_message())
            elif error.code == "kind_not_targeted":
                self.add_error("kind", gettext("This campaign does not target these hosts."))
            else:
                for message in error.messages:
                    self.add_error(None, message)


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


class SubscriptionForm(forms.Form):
    """A feed URL fetched on a schedule. The secret header is an admin's to attach."""

    url = forms.URLField(label=_("Feed URL"), max_length=2000, assume_scheme="https",
                         help_text=_("Fetched by the server with a conditional GET; internal "
                                     "addresses are refused."))
    format = forms.ChoiceField(label=_("Format"), choices=Feed.FORMAT_CHOICES, initial="auto")
    kind = forms.ChoiceField(label=_("Suspected of"), required=False)
    every = forms.CharField(label=_("Fetch every"), required=False, max_length=20,
                            help_text=_("An interval: 15m, 6h, 1d, 1h30m."))
    cron = forms.CharField(label=_("…or on a cron schedule"), required=False, max_length=100,
                           help_text=_("Five fields in UTC, e.g. 0 */6 * * *."))
    auth_secret = forms.CharField(
        label=_("Secret header"), required=False, max_length=60,
        help_text=_("The name of a server environment variable such as "
                    "<code>FEED_AUTH_SHADOWSERVER</code> holding <code>Header-Name: value</code> "
                    "(admins only; the secret never enters the database)."))

    def __init__(self, *args, campaign: Campaign, may_attach_secret: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        names = kind_names(campaign.kinds)
        field = self.fields["kind"]
        field.choices = [("", gettext("As each line says, or the campaign's"))] + [
            (n, KIND_LABELS[n]) for n in names]
        if not may_attach_secret:
            del self.fields["auth_secret"]

    def clean(self):
        data = super().clean()
        if bool(data.get("every", "").strip()) == bool(data.get("cron", "").strip()):
            raise forms.ValidationError(
                gettext("Give one schedule: an interval or a cron expression."))
        return data
