"""Human labels for letter, batch and contact codes; the codes stay what the CLI prints."""

from __future__ import annotations

from django import template

from letters import states
from letters.languages import LANGUAGE_NAMES, bcp47, normalize
from letters.shortlinks import display_code

register = template.Library()

LETTER_STATE_LABELS = {
    states.DRAFT: "Draft", states.QUEUED: "Queued", states.SENT: "Sent",
    states.DELIVERED: "Delivered", states.BOUNCED: "Bounced", states.COMPLAINED: "Complained",
    states.REPLIED: "Replied", states.CANCELLED: "Cancelled", states.FAILED: "Failed",
}
BATCH_STATE_LABELS = {
    states.DRAFT: "Draft", states.SUBMITTED: "Awaiting review", states.APPROVED: "Approved",
    states.REJECTED: "Rejected", states.SENDING: "Sending", states.SENT: "Sent",
}
KIND_LABELS = {states.FIRST_NOTICE: "First notice", states.SECOND_NOTICE: "Second notice"}
CONFIDENCE_LABELS = {
    "manual": "Set by hand", "high": "High (abuse role)",
    "medium": "Medium (no abuse role)", "low": "Low (guessed)",
}
SOURCE_LABELS = {"rdap": "RDAP", "whois": "WHOIS", "manual": "Set by hand"}


@register.filter
def letter_state_label(code: str) -> str:
    return LETTER_STATE_LABELS.get(code, code)


@register.filter
def batch_state_label(code: str) -> str:
    return BATCH_STATE_LABELS.get(code, code)


@register.filter
def kind_label(code: str) -> str:
    return KIND_LABELS.get(code, code)


@register.filter
def language_name(code: str) -> str:
    """`ja` → `日本語 (ja)`, `pt-br` → `Português (Brasil) (pt-BR)`; a tag we have no letters
    in is shown as it is (in BCP 47 casing, like every code staff see)."""
    normal = normalize(code)
    if normal is None:
        return bcp47(code) if code else "—"
    return f"{LANGUAGE_NAMES[normal]} ({bcp47(code)})"


@register.filter
def language_code(code: str) -> str:
    """A bare language code as staff see it: `pt-br` → `pt-BR` (one spelling everywhere)."""
    return bcp47(code) if code else "—"


@register.filter
def confidence_label(code: str) -> str:
    return CONFIDENCE_LABELS.get(code, code or "—")


@register.filter
def source_label(code: str) -> str:
    return SOURCE_LABELS.get(code, code or "—")


@register.filter
def short_code(code: str) -> str:
    """A postal letter's reference as printed (XXXX-XXXX-XXXX)."""
    return display_code(code) if code else "—"
