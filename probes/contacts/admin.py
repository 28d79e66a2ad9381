"""Admin for abuse contacts; imported by the probes app's admin module."""

from django.contrib import admin
from django.db.models import Q

from campaign.admin import ScopedAdmin, UnboundOnlyAdmin, in_visible_campaigns
from campaign.agencies import viewer_agency_id
from probes.contacts import models


@admin.register(models.NetworkRecord)
class NetworkRecordAdmin(UnboundOnlyAdmin):
    # The RDAP/WHOIS cache is shared by every campaign: nothing to scope by.
    list_display = ["display_range", "name", "country", "email", "confidence", "source",
                    "fetched_at", "expires_at"]
    list_filter = ["source", "status", "confidence"]
    search_fields = ["start_address", "name", "handle", "email", "organisation"]
    # Registry answers are evidence: read them here, never edit them.
    readonly_fields = [f.name for f in models.NetworkRecord._meta.fields]
    show_full_result_count = False


@admin.register(models.Contact)
class ContactAdmin(ScopedAdmin):
    list_display = ["host", "email", "status", "confidence", "source", "language", "manual",
                    "updated_at"]
    list_filter = ["status", "source", "confidence", "manual", "language"]
    search_fields = ["email", "host__ip", "organisation"]
    raw_id_fields = ["host", "network", "overridden_by"]
    # Changes go through set_contact (audit log and override history), not this form.
    readonly_fields = [f.name for f in models.Contact._meta.fields]
    show_full_result_count = False

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "host__campaign")


@admin.register(models.ContactOverride)
class ContactOverrideAdmin(ScopedAdmin):
    list_display = ["host", "email", "previous_email", "language", "created_by", "created_at"]
    readonly_fields = [f.name for f in models.ContactOverride._meta.fields]
    raw_id_fields = ["host"]

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "host__campaign")


@admin.register(models.Suppression)
class SuppressionAdmin(ScopedAdmin):
    list_display = ["value", "kind", "source", "agency", "created_by", "created_at"]
    list_filter = ["kind", "source"]
    search_fields = ["value", "reason"]

    def scope(self, qs, user):
        # The agency's own entries and those of people bound to no agency, read-only. The
        # staff list page shows every entry (who made it), but other agencies' reasons are
        # redacted there; the admin would show them whole, so it shows less instead.
        return qs.filter(Q(agency_id=viewer_agency_id(user)) | Q(agency__isnull=True))


@admin.register(models.ContactRun)
class ContactRunAdmin(ScopedAdmin):
    list_display = ["id", "campaign", "mode", "status", "hosts_total", "resolved", "failed",
                    "queries", "created_at"]
    list_filter = ["status", "mode"]
    readonly_fields = [f.name for f in models.ContactRun._meta.fields]

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "campaign")
