"""Roles are Django groups with permissions; this module is their single definition."""

from __future__ import annotations

ANALYST = "analyst"
STAFF = "staff"
REVIEWER = "reviewer"
ADMIN = "admin"
ROLES = (ANALYST, STAFF, REVIEWER, ADMIN)

# Permission codenames on campaign.Campaign that each role holds.
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    ANALYST: ("view_campaign", "import_feed", "run_probes", "resolve_contacts"),
    STAFF: (
        "view_campaign", "add_campaign", "import_feed", "run_probes", "resolve_contacts",
        "build_batch", "send_batch",
    ),
    REVIEWER: ("view_campaign", "review_batch"),
    ADMIN: (
        "view_campaign", "add_campaign", "change_campaign", "import_feed", "run_probes",
        "resolve_contacts", "build_batch", "review_batch", "send_batch",
    ),
}

# The Django admin (/admin/) pages the admin role opens, as "app_label.action_model". The admin
# classes narrow them for users bound to an agency (campaign/admin.py): their own rows only,
# read-only but for their agency's settings and the campaigns it leads. Global tables (users,
# feeds, the RDAP cache, letter templates, the audit log) stay with superusers.
ADMIN_SITE_PERMISSIONS: tuple[str, ...] = (
    "campaign.view_agency", "campaign.change_agency", "campaign.view_staffprofile",
    "campaign.view_feedimport", "campaign.view_importlineissue", "campaign.view_host",
    "campaign.view_sighting",
    "probes.view_proberun", "probes.view_proberesult", "probes.view_contact",
    "probes.view_contactoverride", "probes.view_contactrun", "probes.view_suppression",
    "letters.view_batch", "letters.view_letter", "letters.view_inboundmessage",
    "letters.view_letterevent", "letters.view_retest", "letters.view_contactdraw",
    "letters.view_controlhost", "letters.view_contactpreference",
    "letters.view_lettersettings", "letters.change_lettersettings",
)
SITE_PERMISSIONS: dict[str, tuple[str, ...]] = {ADMIN: ADMIN_SITE_PERMISSIONS}


def ensure_roles() -> None:
    """Create or refresh the role groups (idempotent; run by a data migration, after every
    migrate and by add_user)."""
    from django.apps import apps
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    from campaign.models import Campaign

    content_type = ContentType.objects.get_for_model(Campaign)
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = []
        for codename in codenames:
            perm, _ = Permission.objects.get_or_create(
                content_type=content_type, codename=codename,
                defaults={"name": codename.replace("_", " ").capitalize()},
            )
            perms.append(perm)
        for label in SITE_PERMISSIONS.get(role, ()):
            app_label, codename = label.split(".")
            model = apps.get_model(app_label, codename.split("_", 1)[1])
            # get_or_create: post_migrate may run this before it made another app's rows.
            perm, _ = Permission.objects.get_or_create(
                content_type=ContentType.objects.get_for_model(model), codename=codename,
                defaults={"name": f"Can {codename.replace('_', ' ', 1).replace('_', ' ')}"},
            )
            perms.append(perm)
        group.permissions.set(perms)


def refresh_roles(sender=None, **kwargs) -> None:
    """post_migrate receiver: existing installations get the roles' current permissions."""
    ensure_roles()


def user_roles(user) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    if user.is_superuser:
        return set(ROLES)
    return set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))


def has_perm(user, codename: str) -> bool:
    return bool(user and user.is_active and user.has_perm(f"campaign.{codename}"))
