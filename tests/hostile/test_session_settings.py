"""Session and browser security of the production settings (DEBUG off), read from a real
process started with a production environment, then seen on the wire: the cookies a login
sets and the headers every page carries.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.urls import reverse

from tests.conftest import REPO, make_user
from tests.test_settings_env import production_env

SETTINGS = (
    "DEBUG", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_AGE", "CSRF_COOKIE_SECURE", "CSRF_COOKIE_SAMESITE", "X_FRAME_OPTIONS",
    "SECURE_CONTENT_TYPE_NOSNIFF", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_REFERRER_POLICY", "SECURE_PROXY_SSL_HEADER",
    "SESSION_ENGINE", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS",
)


def production_settings(tmp_path, **extra: str) -> dict:
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            f"print(json.dumps({{n: getattr(s, n, None) for n in {SETTINGS!r}}}))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                          env=production_env(tmp_path, **extra), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_production_settings_protect_the_session_and_the_pages(tmp_path):
    s = production_settings(tmp_path)
    assert s["DEBUG"] is False
    assert s["SESSION_COOKIE_HTTPONLY"] is True  # no script reads the session
    assert s["SESSION_COOKIE_SECURE"] is True and s["CSRF_COOKIE_SECURE"] is True  # https only
    assert s["SESSION_COOKIE_SAMESITE"] == "Lax" and s["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert s["SESSION_COOKIE_AGE"] <= 8 * 3600  # a working day, not Django's two weeks
    assert s["SESSION_ENGINE"] == "django.contrib.sessions.backends.db"  # revocable server-side
    assert s["X_FRAME_OPTIONS"] == "DENY"  # no clickjacking
    assert s["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert s["SECURE_REFERRER_POLICY"] == "same-origin"  # recipient tokens stay on the site
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_HSTS_SECONDS"] >= 31536000 and s["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["ALLOWED_HOSTS"] == ["secureyourserver.example"]  # only what the operator names
    assert s["CSRF_TRUSTED_ORIGINS"] == []


def test_debug_cannot_be_switched_on_by_a_junk_value(tmp_path):
    for junk in ("true-ish", "2", "on please"):
        env = {**production_env(tmp_path), "DEBUG": junk}
        done = subprocess.run([sys.executable, "-c", "import django; django.setup()"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and "is not a boolean" in done.stderr


@pytest.mark.django_db
def test_a_login_sets_secure_http_only_same_site_cookies_and_pages_carry_the_headers(client):
    """The test settings are the production settings (DEBUG off) behind plain HTTP."""
    make_user("cookie-user", "analyst")
    client.get(reverse("login"), secure=True)
    response = client.post(reverse("login"), {"username": "cookie-user",
                                              "password": "correct-horse-9"}, secure=True)
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["httponly"] and session["secure"] and session["samesite"] == "Lax"
    assert 0 < int(session["max-age"]) <= 8 * 3600
    csrf = response.cookies["csrftoken"]
    assert csrf["secure"] and csrf["samesite"] == "Lax"
    page = client.get(reverse("campaign_list"), secure=True)
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page["Referrer-Policy"] == "same-origin"
    assert page["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "includeSubDomains" in page["Strict-Transport-Security"]


@pytest.mark.django_db
def test_signing_out_ends_the_session_on_the_server(client):
    from django.contrib.sessions.models import Session

    make_user("cookie-user", "analyst")
    client.post(reverse("login"), {"username": "cookie-user", "password": "correct-horse-9"},
                secure=True)
    key = client.cookies["sessionid"].value
    assert Session.objects.filter(session_key=key).exists()
    client.post(reverse("logout"), secure=True)
    assert not Session.objects.filter(session_key=key).exists()  # a stolen cookie is dead
