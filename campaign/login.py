"""Login throttling with django-axes: failed logins are counted, and too many lock out (429).

axes records each failed login (username, client address) in its AccessAttempt table and
refuses, in its authentication backend, any login it considers locked, before a password is
checked: the right password gets the same 429 as a wrong one. This module gives axes the
rules it does not have by itself:

* Usernames are counted as Django logs them in: the login form's UsernameField normalises
  them to NFKC (usernames are case-sensitive here, as the login is), so `ａ_staff2` and
  `a_staff2` share one counter and a locked user stays locked under any spelling.
* The client address is campaign.clientip.client_ip (TRUSTED_PROXIES), the same one the
  recipient page's rate limits use.
* Two limits, each on its own counter (axes has one limit for all of them):
  - LOGIN_FAILURES_PER_USER failures of one username, from anywhere, lock that username;
  - LOGIN_FAILURES_PER_ADDRESS failures from one address lock that address, but only for the
    usernames that failed from it: behind a reverse proxy every staff member shares one
    address, and an attacker there must not lock out the colleague who types the right
    password. (A lock that let the right password through for everyone would stop no one.)
  Both within LOGIN_LOCKOUT_SECONDS of the last failure counted; attempts refused during a
  lock-out are not counted, so a lock ends on time.
The answer never says whether a username exists: unknown names are counted the same way.
"""

from __future__ import annotations

from datetime import timedelta

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from campaign.clientip import client_ip


def normalized_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The username as the login form hands it to authenticate() (AXES_USERNAME_CALLABLE)."""
    if credentials and credentials.get("username") is not None:
        raw = credentials["username"]
    else:
        raw = getattr(request, "POST", {}).get("username")
    if raw is None:
        return None
    # As django.contrib.auth.forms.UsernameField does: strip, then NFKC.
    name = get_user_model().normalize_username(str(raw).strip())
    return name or None


def lockout_length(request: HttpRequest | None = None) -> timedelta:
    """AXES_COOLOFF_TIME, read per call so the setting can change (tests, reloads)."""
    return timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)


def address_of(request: HttpRequest) -> str:
    """AXES_CLIENT_IP_CALLABLE: the shared helper."""
    return client_ip(request)


class LoginThrottleHandler(AxesDatabaseHandler):
    """axes' database handler with one limit per counter.

    axes locks when `get_failures() >= AXES_FAILURE_LIMIT`, both before a login and after a
    failure. Here get_failures answers how many of the two limits the attempt has reached,
    and AXES_FAILURE_LIMIT is 1: locked when at least one is.
    """

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        username = get_client_username(request, credentials)
        address = request.axes_ip_address
        recent = AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request))

        def failures(**match) -> int:
            return recent.filter(**match).aggregate(n=Sum("failures_since_start"))["n"] or 0

        reached = 0
        if failures(username=username) >= settings.LOGIN_FAILURES_PER_USER:
            reached += 1
        if (failures(ip_address=address) >= settings.LOGIN_FAILURES_PER_ADDRESS
                and recent.filter(ip_address=address, username=username).exists()):
            reached += 1
        return reached


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict | None = None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the login page with its "too many attempts" message, 429."""
    # An unbound form: binding the POST again would run authenticate() (and count) again.
    form = AuthenticationForm(request, initial={"username": normalized_username(request,
                                                                                credentials)})
    response = render(request, "registration/login.html", {
        "form": form, "throttled": True, "next": request.POST.get("next", ""),
    }, status=429)
    response["Retry-After"] = str(settings.LOGIN_LOCKOUT_SECONDS)
    return response


class ThrottledLoginView(auth_views.LoginView):
    """Django's login view; axes (backend, signals, middleware) does the throttling."""
