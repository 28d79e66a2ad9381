"""API tokens: created and revoked by their owner (the staff UI's "API tokens" page).

A token is `sys_<prefix>_<secret>`; the database keeps the prefix (to find it) and the
SHA-256 of the whole token (to check it), never the token. A token acts as its user: the
user's role and agency decide what it may do, exactly as on the pages, and a user who is
deactivated takes their tokens' access with them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from campaign.audit import record
from campaign.models import ApiToken

PREFIX_BYTES = 6
MAX_TOKENS_PER_USER = 20
# last_used_at is written at most this often per token: not one UPDATE per API call.
TOUCH_EVERY = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token for `user`; returns it with its plaintext, shown to the person once."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        raise PermissionDenied("only an active user may hold API tokens")
    name = name.strip()
    if not name:
        raise ValidationError("give the token a name (what script or pipeline uses it)")
    if ApiToken.objects.filter(user=user, revoked_at__isnull=True).count() >= MAX_TOKENS_PER_USER:
        raise ValidationError(f"you already hold {MAX_TOKENS_PER_USER} active tokens; revoke "
                              "one you no longer use")
    prefix = secrets.token_hex(PREFIX_BYTES)
    plaintext = f"sys_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(user=user, name=name[:100], prefix=prefix,
                                    key_hash=_digest(plaintext))
    record("api_token.create", actor=user, obj=token, data={"name": token.name,
                                                             "prefix": prefix})
    return token, plaintext


def revoke_token(*, token: ApiToken, actor) -> None:
    if token.user_id != actor.pk:
        raise PermissionDenied("a token is revoked by its owner")
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now())
        record("api_token.revoke", actor=actor, obj=token, data={"prefix": token.prefix})


def user_for_token(plaintext: str):
    """The active user an unrevoked token belongs to, or None."""
    parts = plaintext.strip().split("_", 2)  # the secret part may hold "_" itself
    if len(parts) != 3 or parts[0] != "sys" or len(parts[1]) != PREFIX_BYTES * 2:
        return None
    token = (ApiToken.objects.select_related("user").filter(prefix=parts[1],
                                                            revoked_at__isnull=True).first())
    if token is None or not hmac.compare_digest(token.key_hash, _digest(plaintext.strip())):
        return None
    if not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.user.api_token = token
    return token.user


def tokens_of(user) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user).order_by("-created_at", "-id")[:100])
