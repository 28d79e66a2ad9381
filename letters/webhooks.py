"""The ESP webhooks as this site serves them: anymail's views behind a guard.

anymail's views authenticate a call, parse it into normalised events and send the `tracking`
or `inbound` signal for each (letters.receivers records them). Served as they are, three
things go wrong with hostile or unexpected input, so every view is wrapped:

* Only the ESPs this install uses answer: those named in ANYMAIL_WEBHOOK_ESPS, else the one
  EMAIL_BACKEND sends through (`enabled_esps`). Every other ESP's URL is a 404, whatever
  else is set: ANYMAIL_WEBHOOK_SECRET is one secret for all basic-auth ESPs, so setting it
  for Postmark would otherwise open SendGrid's, SparkPost's, Mailjet's… to anyone who
  learns it, with forged events they never send.
* An ESP this install is not set up for (no signing key, a package not installed) raised
  ImproperlyConfigured, a 500, on any stranger's POST: it is a 404 here, logged.
* An ESP whose only protection is HTTP basic auth accepted anyone's events (with a warning)
  when ANYMAIL's WEBHOOK_SECRET is unset: it is a 404 here too, never an open door.
* A payload anymail cannot read (wrong JSON shape, bad base64, bytes that are not UTF-8)
  raised KeyError, TypeError… out of its validators or parsers, a 500 that the ESP retries
  forever: it is a 400 here (`MalformedWebhook`, a SuspiciousOperation), logged.
* Some ESPs' inbound calls make anymail fetch the message or its attachments from the ESP's
  API: when that fails the answer is 503 with Retry-After (the ESP sends it again later).

And the events of one call are recorded in one transaction: a failure while recording the
third event of a batch leaves none of them (the 500 makes the ESP send the batch again).
"""

from __future__ import annotations

import logging
import warnings

import requests
from anymail.exceptions import AnymailImproperlyInstalled, AnymailInsecureWebhookWarning
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.urls import URLPattern, path, re_path
from django.urls.resolvers import RegexPattern
from django.views.decorators.csrf import csrf_exempt

log = logging.getLogger(__name__)

# anymail warns on every request that an ESP relying on basic auth has none; the guard below
# refuses such calls instead, so the warning would only fill the logs.
warnings.filterwarnings("ignore", category=AnymailInsecureWebhookWarning)


def esp_of(view_class: type) -> str:
    """The ESP's name as in its URL and backend module (`anymail.webhooks.mailgun` → mailgun)."""
    return view_class.__module__.rsplit(".", 1)[-1]


def enabled_esps() -> frozenset[str]:
    """The ESPs whose webhooks answer: ANYMAIL_WEBHOOK_ESPS, else EMAIL_BACKEND's ESP."""
    listed = settings.ANYMAIL_WEBHOOK_ESPS
    if listed is not None:
        return frozenset(name.strip().lower() for name in listed if name.strip())
    backend = settings.EMAIL_BACKEND
    if backend.startswith("anymail.backends."):
        return frozenset({backend.split(".")[2]})
    return frozenset()


class MalformedWebhook(SuspiciousOperation):
    """A webhook call that passed authentication but cannot be read (Django answers 400)."""


class UpstreamUnavailable(Exception):
    """anymail could not fetch part of an inbound message from the ESP's API (503)."""


class _Guarded:
    """Mixed in before an anymail webhook view class (see `guarded_view`).

    Only through the hook anymail documents for subclasses, `parse_events`; its validators
    (`validate_request`, every one in the class chain) and `post` stay anymail's own.
    """

    def parse_events(self, request: HttpRequest) -> list:
        # anymail calls this once every validator has passed: an exception before it came
        # from a validator (the view function below tells the two apart by this mark).
        request.anymail_validated = True
        try:
            return list(super().parse_events(request))
        except (SuspiciousOperation, AnymailImproperlyInstalled):
            raise
        except requests.RequestException as exc:
            raise UpstreamUnavailable(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        except Exception as exc:  # anymail's "wrong URL for this payload" errors too
            raise MalformedWebhook(f"unreadable {self.esp_name} webhook payload: "
                                   f"{type(exc).__name__}: {str(exc)[:200]}") from exc



def guarded_view(view_class: type, initkwargs: dict | None = None):
    """A view function serving `view_class` (an anymail webhook view) behind the guard."""
    initkwargs = dict(initkwargs or {})
    guarded_class = type(f"Guarded{view_class.__name__}", (_Guarded, view_class), {})
    inner = guarded_class.as_view(**initkwargs)
    esp = esp_of(view_class)

    @csrf_exempt
    def view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if esp not in enabled_esps():
            log.warning("%s webhook called but this site does not use %s "
                        "(ANYMAIL_WEBHOOK_ESPS)", view_class.esp_name, esp)
            return HttpResponseNotFound("no such webhook here", content_type="text/plain")
        request.anymail_validated = False
        try:
            probe = guarded_class(**initkwargs)
            if getattr(probe, "warn_if_no_basic_auth", False) and not getattr(
                    probe, "basic_auth", None):
                raise ImproperlyConfigured("no ANYMAIL WEBHOOK_SECRET for a basic-auth webhook")
            with transaction.atomic():  # all the call's events, or none
                return inner(request, *args, **kwargs)
        except SuspiciousOperation:
            raise  # anymail's own AnymailWebhookValidationFailure included: a 400
        except ImproperlyConfigured as exc:
            log.warning("%s webhook called but not set up on this site: %s",
                        view_class.esp_name, exc)
            return HttpResponseNotFound("no such webhook here", content_type="text/plain")
        except UpstreamUnavailable as exc:
            log.warning("%s inbound webhook: could not fetch from the ESP: %s",
                        view_class.esp_name, exc)
            response = HttpResponse("could not fetch the message from the mail service; "
                                    "send it again later", status=503,
                                    content_type="text/plain")
            response["Retry-After"] = "300"
            return response
        except Exception as exc:
            if request.anymail_validated:
                raise  # recording the events failed: a 500, the ESP sends them again
            # A validator choking on the payload's shape (a missing signature field…).
            raise MalformedWebhook(f"unreadable {view_class.esp_name} webhook: "
                                   f"{type(exc).__name__}") from exc

    view.view_class = guarded_class
    return view


def guarded_urlpatterns(patterns: list) -> list[URLPattern]:
    """anymail's URL patterns, same routes and names, each view behind the guard."""
    out = []
    for pattern in patterns:
        callback = pattern.callback
        view = guarded_view(callback.view_class, getattr(callback, "view_initkwargs", None))
        make = re_path if isinstance(pattern.pattern, RegexPattern) else path
        out.append(make(str(pattern.pattern), view, name=pattern.name))
    return out
