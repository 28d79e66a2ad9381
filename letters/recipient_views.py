"""The public recipient page: thin views over letters.recipient, behind strict headers.

No login: the signed token in the URL is the only credential. Unknown, forged and expired
tokens all get the same 404 page.
"""

from __future__ import annotations

import functools

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_POST, require_safe

from campaign.clientip import client_ip  # the rate limits' address, as login's
from letters import recipient, shortlinks, variants
from letters import retest as retesting  # the page's view is called `retest`
from letters.languages import ENGLISH, LANGUAGE_NAMES, LANGUAGES, normalize
from letters.rendering import format_when

# Protocol names, the same in every language.
CHECK_LABELS = {"smtp_relay": "SMTP relay", "http_proxy": "HTTP proxy",
                "socks4": "SOCKS4 proxy", "socks5": "SOCKS5 proxy"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def secure_headers(view):
    """Headers for pages anyone with a link may open: no inline code, no indexing, no leaks."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = CSP
        response["X-Robots-Tag"] = "noindex, nofollow, noarchive"
        # The token is in the URL: never send it to another site in a Referer. (Not
        # no-referrer: Chromium then sends "Origin: null" and Django's CSRF check fails.)
        response["Referrer-Policy"] = "same-origin"
        response["X-Content-Type-Options"] = "nosniff"
        response["X-Frame-Options"] = "DENY"
        response["Cross-Origin-Opener-Policy"] = "same-origin"
        response["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        return response

    return never_cache(wrapped)


def _not_found(request: HttpRequest) -> HttpResponse:
    return render(request, "recipient/invalid.html", status=404)


def _language(request: HttpRequest, letter) -> str:
    asked = normalize(request.GET.get("lang"))
    if asked in LANGUAGES:
        return asked
    return normalize(letter.language) or ENGLISH


def _with_letter(view):
    """Resolve the token to its letter (or the common 404) and activate its language."""

    @functools.wraps(view)
    def wrapped(request, token: str, *args, **kwargs):
        letter = recipient.letter_for_token(token)
        if letter is None:
            return _not_found(request)
        language = _language(request, letter)
        with translation.override(language):
            response = view(request, token, letter, language, *args, **kwargs)
            response["Content-Language"] = language
            return response

    return wrapped


def _page_url(token: str, language: str, letter, **query) -> str:
    url = reverse("recipient_page", args=[token])
    params = dict(query)
    if language != (normalize(letter.language) or ENGLISH):
        params["lang"] = language
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def _render_page(request, token, letter, language, *, status=200, **extra) -> HttpResponse:
    run = None
    run_rows: list[dict] = []
    run_id = request.GET.get("run", "")
    if run_id.isdigit():
        run = retesting.run_for_letter(letter, int(run_id))
        if run is not None:
            run_rows = retesting.run_hosts(letter, run)
    hosts = recipient.page_hosts(letter)
    for host in hosts:
        for ev in host.evidence:
            ev["label"] = CHECK_LABELS.get(ev.get("check", ""), ev.get("check", ""))
            ev["when_text"] = format_when(ev.get("when"))
            ev["variant_text"] = variants.variant_sentences(ev.get("variant", ""))
    letter_language = normalize(letter.language) or ENGLISH
    languages = [(code, LANGUAGE_NAMES[code]) for code in dict.fromkeys([letter_language,
                                                                         ENGLISH])]
    chosen = recipient.current_preference(letter)
    context = {
        "preference": chosen,
        # The self-check questions that fit what was found (relay, proxy or both).
        "kinds": recipient.letter_kinds([ev.get("check", "") for host in hosts
                                         for ev in host.evidence]),
        "zone_hint": recipient.suggested_time_zone(recipient.letter_countries(letter, hosts)),
        "all_languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "letter": letter,
        "agency": letter.context.get("agency", {}),
        "token": token,
        "hosts": hosts,
        "open_hosts": [h for h in hosts if h.state == "notified"],
        "run": run,
        "run_rows": run_rows,
        "run_closed": [r for r in run_rows if r["state"] == "remediated"],
        "run_open": [r for r in run_rows if r["verdict"] == "open"],
        "run_running": run is not None and run.status in (run.QUEUED, run.RUNNING),
        "language": language,
        "languages": languages if len(languages) > 1 else [],
        "lang_query": f"?lang={language}" if language != letter_language else "",
        **extra,
    }
    return render(request, "recipient/page.html", context, status=status)


@secure_headers
@require_safe
@_with_letter
def page(request, token, letter, language) -> HttpResponse:
    sent = request.GET.get("sent", "")
    return _render_page(request, token, letter, language, feedback_sent=sent in ("1", "2"),
                        not_mine_sent=sent == "2",
                        preferences_saved=request.GET.get("saved") == "1")


@secure_headers
@require_POST
@csrf_protect
@_with_letter
def retest(request, token, letter, language) -> HttpResponse:
    try:
        run = retesting.start_retest(letter, token=token, client_ip=client_ip(request))
    except recipient.RateLimited as exc:
        response = _render_page(request, token, letter, language, status=429, rate_limited=True)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except retesting.NothingToTest:
        return _render_page(request, token, letter, language, nothing_to_test=True)
    return redirect(_page_url(token, language, letter, run=run.pk) + "#retest")


@secure_headers
@require_GET
@_with_letter
def run_status(request, token, letter, language, run_id: int) -> HttpResponse:
    run = retesting.run_for_letter(letter, run_id)
    if run is None:
        return JsonResponse({"error": "not found"}, status=404)
    finished = run.status in (run.DONE, run.FAILED)
    return JsonResponse({
        "status": run.status, "finished": finished, "done": run.done, "total": run.total,
        "percent": run.progress_percent, "hosts": retesting.run_hosts(letter, run),
    })


@secure_headers
@require_POST
@csrf_protect
@_with_letter
def feedback(request, token, letter, language) -> HttpResponse:
    kind = request.POST.get("kind", "")
    text = request.POST.get("text", "")
    try:
        recipient.submit_feedback(letter, kind=kind, text=text, token=token,
                                  client_ip=client_ip(request))
    except recipient.RateLimited as exc:
        response = _render_page(request, token, letter, language, status=429, rate_limited=True)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except ValueError:
        return _render_page(request, token, letter, language, status=400, feedback_invalid=True)
    sent = "2" if kind == recipient.NOT_MINE else "1"
    return redirect(_page_url(token, language, letter, sent=sent) + "#reply")



@secure_headers
@require_POST
@csrf_protect
@_with_letter
def preferences(request, token, letter, language) -> HttpResponse:
    try:
        recipient.set_preferences(
            letter, language=request.POST.get("letter_language", ""),
            business_days_only=request.POST.get("business_days_only") == "1",
            time_zone=request.POST.get("time_zone", ""), token=token,
            client_ip=client_ip(request))
    except recipient.RateLimited as exc:
        response = _render_page(request, token, letter, language, status=429, rate_limited=True)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except recipient.InvalidPreference:
        return _render_page(request, token, letter, language, status=400,
                            preferences_invalid=True)
    return redirect(_page_url(token, language, letter, saved="1") + "#preferences")


@require_safe
@secure_headers
def short_link(request: HttpRequest, code: str) -> HttpResponse:
    """/s/<code>, typed from a printed letter: on to the letter's page (its signed link)."""
    try:
        recipient.hit("short_code_ip", client_ip(request) or "unknown")
    except recipient.RateLimited as exc:
        response = render(request, "recipient/invalid.html", status=429)
        response["Retry-After"] = str(exc.retry_after)
        return response
    letter = shortlinks.letter_for_code(code)
    if letter is None:
        return _not_found(request)
    token = recipient.make_token(letter.idempotency_key)
    return redirect(reverse("recipient_page", args=[token]))
