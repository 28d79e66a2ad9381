"""Strict readers for settings that come from the environment.

A typo in a production variable should stop the process at start-up, not quietly fall back
to a default, so every helper raises ImproperlyConfigured on junk.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ImproperlyConfigured(f"{name}={raw!r} must be positive")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    raw = os.environ.get(name, default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def email_settings_from_url(url: str) -> dict[str, object]:
    """Translate EMAIL_URL into Django's EMAIL_* settings.

    `console:` prints mail, `smtp://host:port` and `smtp+tls://user:pass@host:port` use
    Django's SMTP backend (`smtps://` for implicit TLS), `file:///dir` writes an outbox
    folder, `locmem:` keeps mail in memory (tests), `anymail:` leaves EMAIL_BACKEND to the
    ANYMAIL_* settings of the chosen ESP.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if scheme == "locmem":
        return {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    if scheme == "file":
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": unquote(parts.path),
        }
    if scheme in {"smtp", "smtp+tls", "smtps"}:
        if not parts.hostname:
            raise ImproperlyConfigured(f"EMAIL_URL={url!r} names no host")
        try:
            port = parts.port
        except ValueError:  # urlsplit raises only when .port is read
            raise ImproperlyConfigured(f"EMAIL_URL={url!r} has a bad port") from None
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": parts.hostname,
            "EMAIL_PORT": port or (465 if scheme == "smtps" else 25),
            "EMAIL_HOST_USER": unquote(parts.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
            "EMAIL_USE_TLS": scheme == "smtp+tls",
            "EMAIL_USE_SSL": scheme == "smtps",
        }
    if scheme.startswith("anymail"):
        backend = os.environ.get("ANYMAIL_BACKEND", "")
        if not backend:
            raise ImproperlyConfigured("EMAIL_URL=anymail: needs ANYMAIL_BACKEND (dotted path)")
        return {"EMAIL_BACKEND": backend}
    raise ImproperlyConfigured(
        f"EMAIL_URL={url!r}: unknown scheme (console:, smtp://, smtp+tls://, file://, anymail:)"
    )
