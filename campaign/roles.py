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


def ensure_roles() -> None:
    """Create or refresh the role groups (idempotent; also run by a data migration)."""
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
        group.permissions.set(perms)


def user_roles(user) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    if user.is_superuser:
        return set(ROLES)
    return set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))


def has_perm(user, codename: str) -> bool:
    return bool(user and user.is_active and user.has_perm(f"campaign.{codename}"))
