"""Human labels for probe codes; the codes themselves stay what the CLI prints."""

from django import template
from django.conf import settings

from campaign.states import HOST_STATE_LABELS
from probes.verification import selectors
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
REFUSED_OUTSIDE_LAB_LABEL = "Refused: outside the lab"
CHECK_LABELS = {
    SMTP_RELAY: "SMTP relay", HTTP_PROXY: "HTTP proxy", SOCKS4: "SOCKS4", SOCKS5: "SOCKS5",
}


@register.filter
def verdict_label(code: str) -> str:
    return VERDICT_LABELS.get(code, code)


@register.filter
def result_label(result) -> str:
    """A stored result's verdict label; a lab-only refusal says so instead of "Error"."""
    details = getattr(result, "details", None) or {}
    if result.verdict == ERROR and details.get("refused") == selectors.LAB_ONLY:
        return REFUSED_OUTSIDE_LAB_LABEL
    return verdict_label(result.verdict)


@register.simple_tag
def verdict_counts(run) -> list[dict]:
    """The run's tiles: `{key, label, n, field}`; `field` is what job-progress.js fills from
    the run's status JSON. Hosts refused as outside the lab get their own tile, not "Error"."""
    shown = selectors.shown_counts(run)
    tiles = [{"key": key, "label": verdict_label(key), "n": n, "field": f"by_verdict.{key}"}
             for key, n in run.by_verdict.items() if key != ERROR]
    tiles.append({"key": ERROR, "label": verdict_label(ERROR), "n": shown[ERROR],
                  "field": f"shown.{ERROR}"})
    refused = shown[selectors.REFUSED_OUTSIDE_LAB]
    if refused or settings.PROBE_LAB_ONLY:  # in lab-only mode, there for the live count too
        tiles.append({"key": selectors.REFUSED_OUTSIDE_LAB, "label": REFUSED_OUTSIDE_LAB_LABEL,
                      "n": refused, "field": f"shown.{selectors.REFUSED_OUTSIDE_LAB}"})
    return tiles


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
