from django.contrib import admin

from campaign.admin import ScopedAdmin, in_visible_campaigns
from probes.verification.models import ProbeResult, ProbeRun


@admin.register(ProbeRun)
class ProbeRunAdmin(ScopedAdmin):
    list_display = ("id", "campaign", "status", "reason", "total", "done", "open_count",
                    "not_open_count", "unreachable_count", "error_count", "created_at")
    list_filter = ("status", "reason")
    readonly_fields = ("host_ids",)

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "campaign")


@admin.register(ProbeResult)
class ProbeResultAdmin(ScopedAdmin):
    list_display = ("id", "host", "check_name", "port", "verdict", "variant", "started_at",
                    "duration_ms")
    list_filter = ("check_name", "verdict")
    raw_id_fields = ("run", "host")
    search_fields = ("host__ip",)

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "host__campaign")

# Contact models register themselves in their own admin module.
import probes.contacts.admin  # noqa: E402,F401
