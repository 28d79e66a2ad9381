"""Human labels for probe codes; the codes themselves stay what the CLI prints."""

from django import template

from campaign.states import HOST_STATE_LABELS
from probes.verification.base import (
    ERROR,
    HTTP_PROXY,
    NOT_OPEN,
    OPEN,
    SMTP_RELAY,
    SOCKS4,
    SOCKS5,
    UNREACHABLE,
)

register = template.Library()

VERDICT_LABELS = {OPEN: "Open", NOT_OPEN: "Not open", UNREACHABLE: "Unreachable", ERROR: "Error"}
CHECK_LABELS = {
    SMTP_RELAY: "SMTP relay", HTTP_PROXY: "HTTP proxy", SOCKS4: "SOCKS4", SOCKS5: "SOCKS5",
}


@register.filter
def verdict_label(code: str) -> str:
    return VERDICT_LABELS.get(code, code)


@register.filter
def check_label(code: str) -> str:
    return CHECK_LABELS.get(code, code)


@register.filter
def host_state_label(code: str) -> str:
    return HOST_STATE_LABELS.get(code, code)


@register.filter
def duration(ms: int | None) -> str:
    """`840 ms`, `2.3 s`: probe timings are read by people comparing them to the timeout."""
    if ms is None:
        return "—"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
