from django.contrib import admin

from campaign import models


@admin.register(models.Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["name", "country", "sender_email", "default_language"]
    search_fields = ["name"]


@admin.register(models.StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "agency"]


@admin.register(models.Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "agency", "status", "created_at"]
    list_filter = ["status", "agency"]
    search_fields = ["slug", "name"]


@admin.register(models.Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = ["name", "format", "url"]


@admin.register(models.FeedImport)
class FeedImportAdmin(admin.ModelAdmin):
    list_display = ["id", "campaign", "feed", "status", "lines", "added", "known", "rejected"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in models.FeedImport._meta.fields]


@admin.register(models.ImportLineIssue)
class ImportLineIssueAdmin(admin.ModelAdmin):
    list_display = ["feed_import", "line_no", "reason", "message", "rejected"]
    list_select_related = ["feed_import"]


@admin.register(models.Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ["ip", "campaign", "state", "country", "asn", "last_seen"]
    list_filter = ["state"]
    search_fields = ["ip"]
    # State moves only through the lifecycle (campaign.hosts), never by hand here.
    readonly_fields = [f.name for f in models.Host._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False


@admin.register(models.Sighting)
class SightingAdmin(admin.ModelAdmin):
    list_display = ["host", "feed_import", "line_no", "port", "tag", "seen_at"]
    raw_id_fields = ["host", "feed_import"]
    show_full_result_count = False


@admin.register(models.AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "action", "object_type", "object_id"]
    list_filter = ["action"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
