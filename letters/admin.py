"""Admin views for inspection; the workflow itself lives in the staff pages and commands.

Batches and letters are read-only here: a state change made in the admin would bypass the
four-eyes check. Templates are editable by users bound to no agency only (they are shared by
every agency), checked in the sandbox on save. Scoping and auditing: campaign.admin.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from jinja2 import TemplateError
from jinja2.exceptions import SecurityError

from campaign.admin import ScopedAdmin, UnboundOnlyAdmin, in_own_batches, in_visible_campaigns
from campaign.agencies import viewer_agency_id
from letters.models import (
    Batch,
    ContactDraw,
    ContactPreference,
    ControlHost,
    InboundMessage,
    Letter,
    LetterEvent,
    LetterSettings,
    LetterTemplate,
    Retest,
)
from letters.rendering import check_template


class ReadOnlyAdmin(ScopedAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Batch)
class BatchAdmin(ReadOnlyAdmin):
    list_display = ("id", "campaign", "state", "created_by", "reviewed_by", "created_at")
    list_filter = ("state",)

    def scope(self, qs, user):
        return in_own_batches(qs, user, "")


@admin.register(Letter)
class LetterAdmin(ReadOnlyAdmin):
    list_display = ("id", "batch", "kind", "email", "language", "state", "sent_at")
    list_filter = ("state", "kind", "language")
    search_fields = ("email", "idempotency_key", "esp_message_id")

    def scope(self, qs, user):
        return in_own_batches(qs, user, "batch")


class UnreadableFilter(admin.SimpleListFilter):
    """Mail the classifier could not read at all: kept, flagged, for a person to look at."""

    title = "readable"
    parameter_name = "unreadable"

    def lookups(self, request, model_admin):
        return [("1", "Unreadable (kept as it came)"), ("0", "Read")]

    def queryset(self, request, queryset):
        if self.value() == "1":
            return queryset.exclude(parse_error="")
        if self.value() == "0":
            return queryset.filter(parse_error="")
        return queryset


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "esp", "from_email", "subject", "letter", "matched_by",
                    "parse_error", "received_at")
    list_filter = ("kind", "esp", UnreadableFilter)
    search_fields = ("from_email", "subject", "message_id")

    def scope(self, qs, user):
        # Unmatched messages (no letter) belong to no agency: unbound users only.
        return in_own_batches(qs, user, "letter__batch")


@admin.register(LetterEvent)
class LetterEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "esp", "event_type", "recipient", "letter", "at")
    list_filter = ("esp", "event_type")
    search_fields = ("recipient", "message_id", "event_id")

    def scope(self, qs, user):
        return in_own_batches(qs, user, "letter__batch")


@admin.register(Retest)
class RetestAdmin(ReadOnlyAdmin):
    list_display = ("id", "campaign", "host", "outcome", "at")
    list_filter = ("outcome",)

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "campaign")


# The control group's record: who was drawn, when, with which share (repeatable by anyone).
@admin.register(ContactDraw)
class ContactDrawAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "email", "held_out", "bucket", "percent", "drawn_at")
    list_filter = ("held_out",)
    search_fields = ("email",)

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "campaign")


@admin.register(ControlHost)
class ControlHostAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "host", "since", "last_retest_at", "remediated_at")

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "campaign")


@admin.register(ContactPreference)
class ContactPreferenceAdmin(ReadOnlyAdmin):
    list_display = ("contact", "language", "business_days_only", "time_zone")

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "contact__host__campaign")


@admin.register(LetterSettings)
class LetterSettingsAdmin(ScopedAdmin):
    list_display = ("campaign", "bilingual")
    bound_editable = ("bilingual",)

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "campaign")

    def bound_may_change(self, request, obj):
        # A campaign-wide setting: the lead agency's to change, as the campaign itself.
        return obj.campaign.agency_id == viewer_agency_id(request.user)


class LetterTemplateForm(forms.ModelForm):
    class Meta:
        model = LetterTemplate
        # A copy is one template in one language, for one agency (empty: the installation's).
        fields = ("name", "agency", "language", "source")

    def clean(self):
        data = super().clean()
        if data.get("name") and data.get("source"):
            try:
                check_template(data["name"], data["source"], data.get("language") or "en")
            except (TemplateError, SecurityError, ValueError, KeyError, TypeError, LookupError,
                    RecursionError, ArithmeticError) as exc:
                raise forms.ValidationError(f"the template does not render: {exc}") from None
        return data


@admin.register(LetterTemplate)
class LetterTemplateAdmin(UnboundOnlyAdmin):
    form = LetterTemplateForm
    list_display = ("name", "agency", "language", "updated_by", "updated_at")
    list_filter = ("language",)

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)
