"""Login with throttling: repeated failures lock a username (and a client address) out for a while.

Counts live in Django's cache (Redis in production), so every web process shares them. Both
keys are checked: one username attacked from many addresses, and one address trying many
usernames, are each slowed down. The answer does not say whether the username exists.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse


def _keys(request: HttpRequest, username: str) -> list[str]:
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    address = request.META.get("REMOTE_ADDR", "")
    return [f"login-fail:user:{name}", f"login-fail:addr:{address}"]


def _locked(keys: list[str]) -> bool:
    limits = (settings.LOGIN_FAILURES_PER_USER, settings.LOGIN_FAILURES_PER_ADDRESS)
    return any((cache.get(key) or 0) >= limit for key, limit in zip(keys, limits, strict=True))


def _count_failure(keys: list[str]) -> None:
    for key in keys:
        cache.add(key, 0, settings.LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, settings.LOGIN_LOCKOUT_SECONDS)


class ThrottledLoginView(auth_views.LoginView):
    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        keys = _keys(request, request.POST.get("username", ""))
        if _locked(keys):
            response = self.render_to_response(
                self.get_context_data(form=self.get_form(), throttled=True), status=429
            )
            response["Retry-After"] = str(settings.LOGIN_LOCKOUT_SECONDS)
            return response
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:  # the form came back: the credentials were wrong
            _count_failure(keys)
        return response
