"""What each variant of a check means, in words a recipient reads in their language.

Shared by the letters (the evidence lines) and the recipient page: the variant codes
(probes/verification: smtp.relay_variants, proxy.py) are internal and never shown.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

_SOCKS4 = _("It connected us to another server without asking who we are (SOCKS4).")
VARIANT_TEXT = {
    "plain": _("It passed on a message from an outside sender to an outside address."),
    "empty_sender": _("It passed on a message with an empty sender address to an outside "
                      "address."),
    "ip_literal": _("It passed on a message to an outside address given as an IP address."),
    "source_route": _("It accepted an outside address in source-route form "
                      "(@server:user@domain)."),
    "percent_hack": _("It accepted an outside address hidden with the percent hack "
                      "(user%domain)."),
    "bang_path": _("It accepted an outside address hidden in a UUCP bang path (domain!user)."),
    "quoted_local": _("It accepted an outside address hidden in a quoted local part."),
    "get": _("It fetched a web page from another server for us (GET)."),
    "connect": _("It opened a tunnel to another server for us (CONNECT)."),
    "socks4": _SOCKS4,
    "socks4a": _SOCKS4,
    "socks5": _("It connected us to another server without a password (SOCKS5)."),
}
for _code in ("percent_hack", "bang_path", "quoted_local"):
    VARIANT_TEXT[f"{_code}_bare"] = VARIANT_TEXT[_code]


def variant_sentences(variant: str) -> list[str]:
    """The sentences for a result's variant (`get,connect` is two); unknown codes say nothing
    rather than show an internal name."""
    out: list[str] = []
    for code in (variant or "").lower().split(","):
        text = VARIANT_TEXT.get(code.strip())
        if text is not None and str(text) not in out:
            out.append(str(text))
    return out
