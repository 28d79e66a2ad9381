"""Writes for agencies, campaigns and users. Views, tasks and commands call these."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_slug
from django.db import transaction

from campaign import kinds as kind_bits
from campaign.agencies import campaigns_q
from campaign.audit import record
from campaign.models import Agency, Campaign, StaffProfile
from campaign.roles import ROLES, ensure_roles, has_perm


@transaction.atomic
def create_campaign(
    *, slug: str, agency_name: str, kinds: str = "relay,proxy", name: str = "", actor=None
) -> Campaign:
    validate_slug(slug)
    if actor is not None and not has_perm(actor, "add_campaign"):
        raise PermissionDenied(f"{actor} may not create campaigns")
    mask = kind_bits.parse_kinds(kinds)
    if Campaign.objects.filter(slug=slug).exists():
        raise ValidationError(f"a campaign with slug {slug!r} already exists")
    agency, created = Agency.objects.get_or_create(name=agency_name.strip())
    if created:
        record("agency.create", actor=actor, obj=agency, data={"name": agency.name})
    campaign = Campaign.objects.create(
        agency=agency, slug=slug, name=name or slug, kinds=mask, created_by=actor
    )
    record("campaign.create", actor=actor, campaign_id=campaign.pk, obj=campaign,
           data={"slug": slug, "kinds": kind_bits.kind_names(mask)})
    return campaign


@transaction.atomic
def add_user(*, username: str, role: str, password: str, agency_name: str | None = None):
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    ensure_roles()
    from django.contrib.auth.models import Group

    user_model = get_user_model()
    # The login form hands usernames over NFKC-normalised (AbstractBaseUser.normalize_username);
    # a name stored in another spelling (fullwidth "ａ_staff2") could never log in.
    username = user_model.normalize_username(username.strip())
    user, created = user_model.objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = role == "admin"  # Django admin site access
    user.save()
    # One role per user: re-running with another role replaces it, never accumulates.
    user.groups.remove(*Group.objects.filter(name__in=ROLES).exclude(name=role))
    user.groups.add(Group.objects.get(name=role))
    agency = None
    if agency_name:
        agency, _ = Agency.objects.get_or_create(name=agency_name.strip())
    profile, _ = StaffProfile.objects.get_or_create(user=user)
    if agency is not None:
        profile.agency = agency
        profile.save(update_fields=["agency"])
    record("user.add" if created else "user.update", obj=user,
           data={"username": username, "role": role, "agency": agency_name or ""})
    return user


def visible_campaigns(user):
    """Campaigns the user may see: their agency's, or every one for users bound to none.

    A single-agency installation needs no agency on its users; once a user is bound to an
    agency (partner agencies) they see the campaigns that agency leads or is a partner in.
    """
    qs = Campaign.objects.select_related("agency")
    profile = getattr(user, "staff_profile", None)
    if user.is_superuser or profile is None or profile.agency_id is None:
        return qs
    return qs.filter(campaigns_q(profile.agency_id))
