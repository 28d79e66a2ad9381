"""Admin for abuse contacts; imported by the probes app's admin module."""

from django.contrib import admin

from probes.contacts import models


@admin.register(models.NetworkRecord)
class NetworkRecordAdmin(admin.ModelAdmin):
    list_display = ["display_range", "name", "country", "email", "confidence", "source",
                    "fetched_at", "expires_at"]
    list_filter = ["source", "status", "confidence"]
    search_fields = ["start_address", "name", "handle", "email", "organisation"]
    # Registry answers are evidence: read them here, never edit them.
    readonly_fields = [f.name for f in models.NetworkRecord._meta.fields]
    show_full_result_count = False


@admin.register(models.Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["host", "email", "status", "confidence", "source", "language", "manual",
                    "updated_at"]
    list_filter = ["status", "source", "confidence", "manual", "language"]
    search_fields = ["email", "host__ip", "organisation"]
    raw_id_fields = ["host", "network", "overridden_by"]
    # Changes go through set_contact (audit log and override history), not this form.
    readonly_fields = [f.name for f in models.Contact._meta.fields]
    show_full_result_count = False


@admin.register(models.ContactOverride)
class ContactOverrideAdmin(admin.ModelAdmin):
    list_display = ["host", "email", "previous_email", "language", "created_by", "created_at"]
    readonly_fields = [f.name for f in models.ContactOverride._meta.fields]
    raw_id_fields = ["host"]


@admin.register(models.Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["value", "kind", "source", "created_by", "created_at"]
    list_filter = ["kind", "source"]
    search_fields = ["value", "reason"]


@admin.register(models.ContactRun)
class ContactRunAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "mode", "status", "hosts_total", "resolved", "failed",
                    "queries", "created_at"]
    list_filter = ["status", "mode"]
    readonly_fields = [f.name for f in models.ContactRun._meta.fields]
