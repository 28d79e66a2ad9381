"""The batch and letter lifecycles, in one place each.

Batch: draft → submitted → approved | rejected; approved → sending → sent. Editing a
submitted or approved batch sends it back to draft (it must be reviewed again).

Letter: draft (in a batch not yet approved) → queued (approved) → sent → delivered |
bounced | complained | replied. A letter whose batch is rejected, or whose hosts were all
found closed before sending, is cancelled; one the mail server refuses for good has failed.

Nothing else writes `Batch.state` or `Letter.state`: every move is a conditional UPDATE on
the state we read (see letters.batches, letters.sending and letters.tracking), so two
workers never make the same move twice.
"""

from __future__ import annotations

# Batch states
DRAFT = "draft"
SUBMITTED = "submitted"
APPROVED = "approved"
REJECTED = "rejected"
SENDING = "sending"
SENT = "sent"
BATCH_STATES: tuple[str, ...] = (DRAFT, SUBMITTED, APPROVED, REJECTED, SENDING, SENT)

BATCH_TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({SUBMITTED}),
    # Back to draft: an edit after submission (or approval) needs a fresh review.
    SUBMITTED: frozenset({APPROVED, REJECTED, DRAFT}),
    APPROVED: frozenset({SENDING, DRAFT}),
    REJECTED: frozenset(),
    SENDING: frozenset({SENT}),
    SENT: frozenset(),
}
EDITABLE_BATCH_STATES = frozenset({DRAFT, SUBMITTED, APPROVED})

# Letter states (DRAFT and SENT are shared names with the batch states, same strings)
QUEUED = "queued"
DELIVERED = "delivered"
BOUNCED = "bounced"
COMPLAINED = "complained"
REPLIED = "replied"
CANCELLED = "cancelled"
FAILED = "failed"
LETTER_STATES: tuple[str, ...] = (
    DRAFT, QUEUED, SENT, DELIVERED, BOUNCED, COMPLAINED, REPLIED, CANCELLED, FAILED,
)

LETTER_TRANSITIONS: dict[str, frozenset[str]] = {
    DRAFT: frozenset({QUEUED, CANCELLED}),
    # Back to draft when an approved batch is edited and must be reviewed again.
    QUEUED: frozenset({SENT, FAILED, CANCELLED, DRAFT}),
    SENT: frozenset({DELIVERED, BOUNCED, COMPLAINED, REPLIED}),
    # A late bounce or a complaint may follow delivery; so may a reply.
    DELIVERED: frozenset({BOUNCED, COMPLAINED, REPLIED}),
    REPLIED: frozenset({COMPLAINED}),
    BOUNCED: frozenset({REPLIED}),
    COMPLAINED: frozenset(),
    CANCELLED: frozenset(),
    FAILED: frozenset(),
}
# Letters that went out: what tracking events and replies may attach to.
OUT_STATES = frozenset({SENT, DELIVERED, BOUNCED, COMPLAINED, REPLIED})

# How a letter travels. A postal letter is queued once approved, printed (letters.postal),
# and moves to sent when staff mark it posted and to bounced when the post returns it.
EMAIL = "email"
POSTAL = "postal"
CHANNELS = (EMAIL, POSTAL)

FIRST_NOTICE = "first_notice"
SECOND_NOTICE = "second_notice"
KINDS = (FIRST_NOTICE, SECOND_NOTICE)


class IllegalTransition(ValueError):
    def __init__(self, what: str, current: str, target: str) -> None:
        super().__init__(f"a {what} cannot go from {current!r} to {target!r}")
        self.current = current
        self.target = target


def check_batch_transition(current: str, target: str) -> None:
    if target not in BATCH_TRANSITIONS.get(current, frozenset()):
        raise IllegalTransition("batch", current, target)


def can_letter_transition(current: str, target: str) -> bool:
    return target in LETTER_TRANSITIONS.get(current, frozenset())


def letter_sources(target: str) -> frozenset[str]:
    """Every letter state from which `target` may be reached."""
    return frozenset(s for s, targets in LETTER_TRANSITIONS.items() if target in targets)
