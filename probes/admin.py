from django.contrib import admin

from probes.verification.models import ProbeResult, ProbeRun


@admin.register(ProbeRun)
class ProbeRunAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "status", "reason", "total", "done", "open_count",
                    "not_open_count", "unreachable_count", "error_count", "created_at")
    list_filter = ("status", "reason")
    readonly_fields = ("host_ids",)


@admin.register(ProbeResult)
class ProbeResultAdmin(admin.ModelAdmin):
    list_display = ("id", "host", "check_name", "port", "verdict", "variant", "started_at",
                    "duration_ms")
    list_filter = ("check_name", "verdict")
    raw_id_fields = ("run", "host")
    search_fields = ("host__ip",)

# Contact models register themselves in their own admin module.
import probes.contacts.admin  # noqa: E402,F401
