"""What happens to a letter after it left: the ESP's tracking events (delivered, bounced,
complained, opened), replies threaded to the letter they answer, and the do-not-contact
entries bounces and complaints make. The anymail webhook receivers (letters.receivers) call
these; the recipient's page threads its replies with move_letter too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from anymail.signals import EventType
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaign.audit import record
from letters import mailtext, selectors, states
from letters.models import Letter, LetterEvent
from probes.contacts.errors import ContactError
from probes.contacts.records import clean_email
from probes.contacts.suppression import suppress

log = logging.getLogger(__name__)


TRACKING_STATES = {
    EventType.DELIVERED: states.DELIVERED,
    EventType.BOUNCED: states.BOUNCED,
    EventType.REJECTED: states.BOUNCED,
    EventType.COMPLAINED: states.COMPLAINED,
}
TIMESTAMP_FIELDS = {
    states.DELIVERED: "delivered_at",
    states.BOUNCED: "bounced_at",
    states.COMPLAINED: "complained_at",
    states.REPLIED: "replied_at",
}


def suppress_address(email: str, *, reason: str, source: str, letter: Letter) -> None:
    """Put an address on the do-not-contact list: it bounced, complained, or the mail
    server refused it for good when the letter was sent (letters.sending)."""
    # The entry belongs to the agency whose letter bounced (its staff see it listed).
    agency_id = letter.batch.agency_id or letter.campaign.agency_id
    try:
        suppress(value=email, actor=None, reason=reason, source=source, agency_id=agency_id)
    except ContactError as exc:
        log.warning("could not suppress %s: %s", email, exc)


def _letter_for_event(message_id: object, metadata: object) -> Letter | None:
    # Both come from the ESP's payload: any JSON value, whatever the ESP documents.
    key = metadata.get("letter") if isinstance(metadata, dict) else None
    if isinstance(key, str) and key:
        found = Letter.objects.filter(idempotency_key=mailtext.clean_text(key, 32)).first()
        if found:
            return found
    message_id = mailtext.one_line(message_id, 255) if isinstance(message_id, str | int) else ""
    if message_id:
        return selectors.letter_for_message_ids([message_id])
    return None


def move_letter(letter: Letter, target: str, *, at: datetime | None = None,
                data: dict | None = None) -> bool:
    """Conditional move of a sent letter (delivered, bounced, …), with its audit event."""
    if not states.can_letter_transition(letter.state, target):
        return False
    now = timezone.now()
    fields = {"state": target, "state_changed_at": now}
    if target in TIMESTAMP_FIELDS:
        fields[TIMESTAMP_FIELDS[target]] = at or now
    moved = Letter.objects.filter(pk=letter.pk, state=letter.state).update(**fields)
    if moved != 1:
        return False
    record(f"letter.{target}", campaign_id=letter.campaign_id, obj=letter,
           data={"from": letter.state, "to": target, **(data or {})})
    for name, value in fields.items():
        setattr(letter, name, value)
    return True


def record_tracking_event(event, esp_name: str) -> LetterEvent | None:
    """Apply one normalised anymail tracking event; a duplicate delivery is ignored."""
    letter = _letter_for_event(event.message_id, event.metadata)
    at = event.timestamp if isinstance(event.timestamp, datetime) else timezone.now()
    if timezone.is_naive(at):  # some ESPs' parsers leave a zone-less time as it came
        at = at.replace(tzinfo=UTC)
    recipient = mailtext.one_line(event.recipient or "", 254)
    try:
        with transaction.atomic():
            stored = LetterEvent.objects.create(
                letter=letter, esp=mailtext.one_line(esp_name, 40),
                event_id=mailtext.clean_text(event.event_id or "", 255),
                event_type=mailtext.one_line(event.event_type, 20),
                recipient=recipient, message_id=mailtext.clean_text(event.message_id or "", 255),
                description=mailtext.clean_text(event.description or event.mta_response or "",
                                                2000), at=at,
            )
    except IntegrityError:
        return None  # the ESP re-sent an event we already applied
    if letter is None:
        log.info("%s %s event for an unknown message %s", esp_name, event.event_type,
                 event.message_id)
        return stored
    target = TRACKING_STATES.get(event.event_type)
    if event.event_type == EventType.OPENED:
        Letter.objects.filter(pk=letter.pk, opened_at__isnull=True).update(opened_at=at)
    elif target is not None:
        move_letter(letter, target, at=at,
                    data={"esp": esp_name, "event": stored.event_id,
                          "description": stored.description[:300]})
    if target in (states.BOUNCED, states.COMPLAINED):
        source = "complaint" if target == states.COMPLAINED else "bounce"
        # The bounced address, never a domain: a recipient that is not a plain address (a
        # payload's garbage) must not put a whole domain on the do-not-contact list.
        suppress_address(clean_email(recipient) or letter.email,
                         reason=f"{event.event_type} reported by {esp_name} for letter {letter.pk}",
                         source=source, letter=letter)
    return stored


# -- replies --------------------------------------------------------------------------------
