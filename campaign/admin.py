"""The Django admin, scoped like the staff pages and written to the audit log.

Every registered admin class derives from one of two bases:

- `ScopedAdmin`: a user bound to an agency sees the rows the staff pages show them (the
  campaigns their agency leads or joins, their agency's batches and letters, their own
  agency) and changes only `bound_editable` fields of rows `bound_may_change` allows; they
  never add or delete, and never touch cross-agency fields (a campaign's lead or partners).
- `UnboundOnlyAdmin`: global tables (users, feeds, the RDAP cache, templates, the audit log)
  are for users bound to no agency (superusers) only.

Users bound to no agency see everything, as in the staff pages (`visible_campaigns`). Every
write made here (add, change, delete, bulk delete) is also an audit event `admin.add`,
`admin.change` or `admin.delete`, in the same transaction as the write itself.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import models as db_models
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from campaign import models
from campaign.agencies import batch_scope, viewer_agency_id
from campaign.audit import record
from campaign.services import visible_campaigns
from letters.languages import LANGUAGES, normalize

# --- scoping -------------------------------------------------------------------------------


def in_visible_campaigns(qs: QuerySet, user, path: str) -> QuerySet:
    """Rows whose campaign (reached through `path`) the user may see in the staff pages."""
    return qs.filter(**{f"{path}__in": visible_campaigns(user).values("pk")})


def in_own_batches(qs: QuerySet, user, path: str) -> QuerySet:
    """Rows of batches the user's agency may see (batches and letters are per agency)."""
    via = f"{path}__" if path else ""
    return in_visible_campaigns(qs, user, f"{via}campaign").filter(batch_scope(user, via=via))


def _audit_value(value: Any) -> Any:
    # The audit row keeps what was set, small and JSON-safe: ids for rows, text cut short.
    if isinstance(value, db_models.Model):
        return value.pk
    if isinstance(value, QuerySet | list | tuple | set):
        return sorted(_audit_value(v) for v in value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:200]


class AuditedAdmin(admin.ModelAdmin):
    """Writes the app's audit log next to Django's admin log, in the write's transaction.

    Django calls log_addition / log_change / log_deletions once per admin write; the change
    form, list editing and the delete view run them inside their transaction, and
    `response_action` (bulk delete) is made atomic here so the same holds for actions.
    """

    def construct_change_message(self, request, form, formsets, add=False):
        # Field names (not labels) and their new values, for log_addition / log_change.
        request._audit_fields = {
            name: _audit_value(form.cleaned_data.get(name))
            for name in form.changed_data if "password" not in name
        }
        return super().construct_change_message(request, form, formsets, add)

    def _audit(self, request: HttpRequest, action: str, obj, fields: dict | None = None) -> None:
        data: dict = {"model": obj._meta.label_lower, "object": str(obj)[:200]}
        if fields is not None:
            data["fields"] = fields
        campaign_id = getattr(obj, "campaign_id", None)
        if isinstance(obj, models.Campaign) and action != "admin.delete":
            campaign_id = obj.pk
        record(action, actor=request.user, campaign_id=campaign_id, obj=obj, data=data)

    def log_addition(self, request, obj, message):
        self._audit(request, "admin.add", obj, getattr(request, "_audit_fields", {}))
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._audit(request, "admin.change", obj, getattr(request, "_audit_fields", {}))
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._audit(request, "admin.delete", obj)
        return super().log_deletions(request, queryset)

    def response_action(self, request, queryset):
        # delete_selected logs, then deletes: one transaction, so neither happens alone.
        with transaction.atomic(using=self.model.objects.db):
            return super().response_action(request, queryset)

    def get_object(self, request, object_id, from_field=None):
        # Missing and out of scope look the same (404, as the staff pages answer), instead
        # of Django's redirect with "doesn't exist" for one and a page for the other.
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("no such object")
        return obj


def is_bound(request: HttpRequest) -> bool:
    return viewer_agency_id(request.user) is not None


class ScopedAdmin(AuditedAdmin):
    """Rows scoped like the staff pages; users bound to an agency change little, add nothing.

    Subclasses define `scope` (the rows a bound user may see) and may open `bound_editable`
    fields on the rows `bound_may_change` accepts.
    """

    bound_editable: tuple[str, ...] = ()

    def scope(self, qs: QuerySet, user) -> QuerySet:
        raise NotImplementedError(f"{type(self).__name__} must define scope()")

    def bound_may_change(self, request: HttpRequest, obj) -> bool:
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return self.scope(qs, request.user) if is_bound(request) else qs

    def has_add_permission(self, request, *args):
        return super().has_add_permission(request, *args) and not is_bound(request)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not is_bound(request)

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        if not is_bound(request):
            return True
        if not self.bound_editable:
            return False
        return obj is None or self.bound_may_change(request, obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if is_bound(request):
            opts = self.model._meta
            readonly += [f.name for f in (*opts.fields, *opts.many_to_many)
                         if f.editable and f.name not in self.bound_editable
                         and f.name not in readonly]
        return readonly

    def get_list_filter(self, request):
        # A related-field filter lists every row of the other table (every agency's name);
        # offer only the values of the rows this user sees.
        return [
            (name, admin.RelatedOnlyFieldListFilter)
            if isinstance(name, str) and self.model._meta.get_field(name).is_relation
            else name
            for name in super().get_list_filter(request)
        ]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs.setdefault("queryset", choices_for(db_field.remote_field.model, request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("queryset", choices_for(db_field.remote_field.model, request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Belt and braces: whatever the form let through, a bound user never moves a row out
        # of their own scope (raising here rolls the whole change back).
        if is_bound(request) and not self.get_queryset(request).filter(
                pk=form.instance.pk).exists():
            raise PermissionDenied("that change would hand the row to another agency")


class UnboundOnlyAdmin(AuditedAdmin):
    """Global tables: only for users bound to no agency (superusers)."""

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs.none() if is_bound(request) else qs

    def get_object(self, request, object_id, from_field=None):
        # The whole table is off limits (403), not this one row missing (404).
        if is_bound(request):
            raise PermissionDenied("for users bound to no agency only")
        return super().get_object(request, object_id, from_field)

    def has_module_permission(self, request):
        return super().has_module_permission(request) and not is_bound(request)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and not is_bound(request)

    def has_add_permission(self, request, *args):
        return super().has_add_permission(request, *args) and not is_bound(request)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not is_bound(request)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not is_bound(request)


def choices_for(model, request: HttpRequest) -> QuerySet:
    """The rows of `model` a form in the admin may offer this user: what its admin shows
    them; users of their own agency for user fields; nothing of an unregistered model."""
    qs = model._default_manager.all()
    if not is_bound(request):
        return qs
    if model is get_user_model():
        return qs.filter(staff_profile__agency_id=viewer_agency_id(request.user))
    registered = admin.site._registry.get(model)
    return qs.none() if registered is None else registered.get_queryset(request)


# --- campaign ------------------------------------------------------------------------------


class AgencyAdminForm(forms.ModelForm):
    """The admin writes these fields without the staff pages' forms: the same checks here."""

    class Meta:
        model = models.Agency
        fields = "__all__"  # noqa: DJ007 (the admin's fieldsets and read-only fields decide)

    def clean_default_language(self) -> str:
        code = normalize(self.cleaned_data.get("default_language") or "")
        if code not in LANGUAGES:
            # "xx" would make every batch of the agency fail as a missing catalog.
            raise forms.ValidationError(
                f"not a letter language (one of {', '.join(LANGUAGES)})")
        return code


class CampaignAdminForm(forms.ModelForm):
    class Meta:
        model = models.Campaign
        fields = "__all__"  # noqa: DJ007 (the admin's fieldsets and read-only fields decide)

    def clean_holdout_percent(self) -> int:
        percent = self.cleaned_data.get("holdout_percent") or 0
        if not 0 <= percent <= MAX_HOLDOUT_PERCENT:
            # A control group is there to compare with the contacts written to: above half,
            # most (at 100 or more, all) of the campaign's contacts would never get a letter.
            raise forms.ValidationError(
                f"hold out between 0 and {MAX_HOLDOUT_PERCENT} percent of the contacts")
        return percent


MAX_HOLDOUT_PERCENT = 50


@admin.register(models.Agency)
class AgencyAdmin(ScopedAdmin):
    form = AgencyAdminForm
    list_display = ["name", "country", "sender_email", "default_language"]
    search_fields = ["name"]
    # What the agency's settings page edits (campaign.agency_views.AGENCY_FIELDS): its
    # letters' look. Name, country and jurisdiction decide joint campaigns' routing.
    bound_editable = ("letterhead", "sender_email", "reply_to", "signature", "info_url",
                      "instructions_url", "default_language")

    def scope(self, qs, user):
        return qs.filter(pk=viewer_agency_id(user))

    def bound_may_change(self, request, obj):
        return obj.pk == viewer_agency_id(request.user)


@admin.register(models.StaffProfile)
class StaffProfileAdmin(ScopedAdmin):
    list_display = ["user", "agency"]

    def scope(self, qs, user):
        return qs.filter(agency_id=viewer_agency_id(user))


@admin.register(models.Campaign)
class CampaignAdmin(ScopedAdmin):
    form = CampaignAdminForm
    list_display = ["slug", "name", "agency", "status", "created_at"]
    list_filter = ["status", "agency"]
    search_fields = ["slug", "name"]
    # The lead agency's own settings; never the lead, the partners or the slug.
    bound_editable = ("name", "status", "reprobe_interval_days", "followup_delay_days",
                      "holdout_percent", "holdout_seed")

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "pk")

    def bound_may_change(self, request, obj):
        # Partners see a joint campaign; only its lead runs it (as agencies.require_lead).
        return obj.agency_id == viewer_agency_id(request.user)


@admin.register(models.Feed)
class FeedAdmin(UnboundOnlyAdmin):
    # Feeds are shared by every campaign that imported them.
    list_display = ["name", "format", "url"]


@admin.register(models.FeedImport)
class FeedImportAdmin(ScopedAdmin):
    list_display = ["id", "campaign", "feed", "status", "lines", "added", "known", "rejected"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in models.FeedImport._meta.fields]

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "campaign")


@admin.register(models.ImportLineIssue)
class ImportLineIssueAdmin(ScopedAdmin):
    list_display = ["feed_import", "line_no", "reason", "message", "rejected"]
    list_select_related = ["feed_import"]

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "feed_import__campaign")


@admin.register(models.Host)
class HostAdmin(ScopedAdmin):
    list_display = ["ip", "campaign", "state", "country", "asn", "last_seen"]
    list_filter = ["state"]
    search_fields = ["ip"]
    # State moves only through the lifecycle (campaign.hosts), never by hand here.
    readonly_fields = [f.name for f in models.Host._meta.fields]
    show_full_result_count = False

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "campaign")

    def has_add_permission(self, request):
        return False


@admin.register(models.Sighting)
class SightingAdmin(ScopedAdmin):
    list_display = ["host", "feed_import", "line_no", "port", "tag", "seen_at"]
    raw_id_fields = ["host", "feed_import"]
    show_full_result_count = False

    def scope(self, qs, user):
        return in_visible_campaigns(qs, user, "host__campaign")


@admin.register(models.AuditEvent)
class AuditEventAdmin(UnboundOnlyAdmin):
    list_display = ["at", "actor", "action", "object_type", "object_id"]
    list_filter = ["action"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- other apps' admins: installation-wide tables ------------------------------------------


def keep_to_unbound_users(model) -> None:
    """Re-register another app's admin of `model` for users bound to no agency only."""
    registered = admin.site._registry.get(model)
    if registered is None or isinstance(registered, UnboundOnlyAdmin):
        return
    admin.site.unregister(model)
    cls = type(registered)
    admin.site.register(model, type(cls.__name__, (UnboundOnlyAdmin, cls),
                                    {"__module__": __name__}))


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(UnboundOnlyAdmin, auth_admin.UserAdmin):
    def user_change_password(self, request, id, form_url=""):
        # Django's view logs the change outside a transaction; keep it with the audit row.
        with transaction.atomic(using=User.objects.db):
            return super().user_change_password(request, id, form_url)


keep_to_unbound_users(Group)

if apps.is_installed("axes"):
    # Login attempts name users and addresses of every agency. Imported here (autodiscover
    # reaches axes after this app) so its admin classes are registered before we wrap them.
    import axes.admin  # noqa: F401
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    for _model in (AccessAttempt, AccessFailureLog, AccessLog):
        keep_to_unbound_users(_model)
