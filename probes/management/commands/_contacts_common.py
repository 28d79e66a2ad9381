"""Helpers shared by the abuse-contact commands: look-ups of --campaign and --by."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from campaign.models import Campaign


def campaign_or_error(slug: str) -> Campaign:
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is None:
        raise CommandError(f"there is no campaign {slug!r}")
    return campaign


def user_or_error(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"there is no user {username!r} (create one with add_user)")
    if not user.is_active:
        raise CommandError(f"user {username!r} is deactivated")
    return user
