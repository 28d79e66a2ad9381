"""A strict Content-Security-Policy on every page that does not bring its own.

Staff pages, the login page and Django's admin load scripts and styles from this site only:
no inline script, no inline style attribute, no plugin, no framing, forms post here only.
An injected `<script>` or `onerror=` in a page would not run. A view that sets its own policy
(the recipient page, letters/recipient_views.py) keeps it. Django 5.2 has no CSP setting
(it arrives in 6.0), hence this middleware.

One exception: the pages that show a letter's HTML (the letter preview, the template editor)
do so in a sandboxed `<iframe srcdoc>`, which runs no script but inherits the page's policy,
and mail HTML is styled with inline `style` attributes (mail clients ignore style sheets).
Those pages allow inline styles, and only styles: scripts stay 'self' only.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
LETTER_HTML_POLICY = POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
# URL names of the pages that embed a letter's HTML (see above).
LETTER_HTML_PAGES = frozenset({"letter_preview", "template_edit"})


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            match = getattr(request, "resolver_match", None)
            letter_html = match is not None and match.url_name in LETTER_HTML_PAGES
            response["Content-Security-Policy"] = LETTER_HTML_POLICY if letter_html else POLICY
        return response
