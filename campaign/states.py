"""The host lifecycle, in one place.

imported → verified_open | not_open | unreachable → (verified_open →)
contact_resolved | no_contact → notified → remediated.

Re-tests may move a host back and forth between the probe outcomes before it is notified; a
notified host found closed is remediated, one still open stays notified (and gets a second
notice). Nothing else may change `Host.state`: every write goes through `campaign.hosts`.
"""

from __future__ import annotations

IMPORTED = "imported"
VERIFIED_OPEN = "verified_open"
NOT_OPEN = "not_open"
UNREACHABLE = "unreachable"
CONTACT_RESOLVED = "contact_resolved"
NO_CONTACT = "no_contact"
NOTIFIED = "notified"
REMEDIATED = "remediated"

HOST_STATES: tuple[str, ...] = (
    IMPORTED,
    VERIFIED_OPEN,
    NOT_OPEN,
    UNREACHABLE,
    CONTACT_RESOLVED,
    NO_CONTACT,
    NOTIFIED,
    REMEDIATED,
)

HOST_STATE_LABELS = {
    IMPORTED: "Imported",
    VERIFIED_OPEN: "Verified open",
    NOT_OPEN: "Not open",
    UNREACHABLE: "Unreachable",
    CONTACT_RESOLVED: "Contact resolved",
    NO_CONTACT: "No contact",
    NOTIFIED: "Notified",
    REMEDIATED: "Remediated",
}

_PROBE_OUTCOMES = {VERIFIED_OPEN, NOT_OPEN, UNREACHABLE}

HOST_TRANSITIONS: dict[str, frozenset[str]] = {
    IMPORTED: frozenset(_PROBE_OUTCOMES),
    # A re-test before any letter may change its mind: servers open and close.
    VERIFIED_OPEN: frozenset({CONTACT_RESOLVED, NO_CONTACT, NOT_OPEN, UNREACHABLE}),
    NOT_OPEN: frozenset({VERIFIED_OPEN, UNREACHABLE}),
    UNREACHABLE: frozenset({VERIFIED_OPEN, NOT_OPEN}),
    # Found closed before the letter left: it drops out of the batch.
    CONTACT_RESOLVED: frozenset({NOTIFIED, NO_CONTACT, NOT_OPEN, UNREACHABLE}),
    NO_CONTACT: frozenset({CONTACT_RESOLVED, NOT_OPEN, UNREACHABLE}),
    NOTIFIED: frozenset({REMEDIATED}),
    # Re-opened after remediation: back to the start of the verified path.
    REMEDIATED: frozenset({VERIFIED_OPEN}),
}


class IllegalTransition(ValueError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a host cannot go from {current!r} to {target!r}")
        self.current = current
        self.target = target


def can_transition(current: str, target: str) -> bool:
    return target in HOST_TRANSITIONS.get(current, frozenset())


def sources_for(target: str) -> frozenset[str]:
    """Every state from which `target` may be reached."""
    return frozenset(state for state, targets in HOST_TRANSITIONS.items() if target in targets)


# Only the fallback chain (probes.contacts.fallback) takes these, never a bulk move: a notice
# that bounced for good notified nobody, so the host takes its next contact, or has none.
# Its end, a postal letter posted (letters.postal), notifies a host that had no contact.
AFTER_BOUNCE: dict[str, frozenset[str]] = {NOTIFIED: frozenset({CONTACT_RESOLVED, NO_CONTACT}),
                                           NO_CONTACT: frozenset({NOTIFIED})}


def check_transition(current: str, target: str, *, after_bounce: bool = False) -> None:
    if can_transition(current, target):
        return
    if after_bounce and target in AFTER_BOUNCE.get(current, frozenset()):
        return
    raise IllegalTransition(current, target)
