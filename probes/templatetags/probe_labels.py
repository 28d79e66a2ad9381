"""Human labels for probe codes (probes.verification.labels); the codes stay what the CLI prints."""

from django import template

from campaign.states import HOST_STATE_LABELS
from probes.verification import labels
from probes.verification.base import ERROR
from probes.verification.models import LAB_ONLY

register = template.Library()


@register.filter
def verdict_label(code: str) -> str:
    return labels.verdict_label(code)


@register.filter
def result_label(result) -> str:
    """A stored result's verdict label; a lab-only refusal says so instead of "Error"."""
    details = getattr(result, "details", None) or {}
    if result.verdict == ERROR and details.get("refused") == LAB_ONLY:
        return labels.REFUSED_OUTSIDE_LAB_LABEL
    return labels.verdict_label(result.verdict)


@register.filter
def check_label(code: str) -> str:
    return labels.check_label(code)


@register.filter
def host_state_label(code: str) -> str:
    return HOST_STATE_LABELS.get(code, code)


@register.filter
def duration(ms: int | None) -> str:
    """`840 ms`, `2.3 s`: probe timings are read by people comparing them to the timeout."""
    if ms is None:
        return "—"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
