"""Receiving a message that came back: classify it, find its letter, act on it, keep it.

One path for every way mail comes in (an MTA's pipe through `manage.py receive_mail`, the
IMAP poller, an ESP's inbound webhook): `receive_raw` for bytes, `receive_message` for a
parsed message. What it does, per kind (letters.inbound.classify):

* bounce: a permanent failure of the letter's address bounces the letter and puts the
  address on the do-not-contact list; a temporary one (full, filtered, delayed) is recorded
  on the letter and changes nothing else.
* complaint: the letter is marked complained and the address suppressed (an audit event
  tells staff).
* auto_reply: kept on the letter, never counted as a reply.
* reply: the letter is marked replied; a person's mail that answers no letter is `unmatched`.

Matching, first hit wins: the VERP token of the address it was delivered to
(`bounces+TOKEN@…`, the letter's own return path); a Message-ID it names (In-Reply-To,
References, the returned letter's headers); for bounces and complaints, the bounced address
among letters sent to it in the last 30 days; for replies, the sender's latest letter. Only
the first two suppress an address or move a contact (see TRUSTED_MATCHES).

Each message is recorded once: its sha256 is unique, so an MTA or poller that delivers it
again (after a crash, a retry) changes nothing the second time. A message that cannot be
read at all is kept, flagged, as `unmatched`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message

from django.db import IntegrityError, transaction
from django.utils import timezone

from letters import mailtext, selectors, states
from letters.inbound import classify as kinds
from letters.inbound.classify import Classification, UnreadableMessage, classify, parse
from letters.inbound.verp import token_of
from letters.models import InboundMessage, Letter, LetterEvent
from letters.tracking import move_letter, suppress_address
from probes.contacts.fallback import fall_back
from probes.contacts.models import Contact

log = logging.getLogger(__name__)

MATCH_WINDOW = timedelta(days=30)  # a bounce names a recipient written to this recently


@dataclass
class Received:
    kind: str
    letter_id: int | None = None
    recipients: list[dict] = field(default_factory=list)
    matched_by: str = ""
    reason: str = ""
    stored: InboundMessage | None = None  # the row it is kept as (the earlier one if a repeat)
    duplicate: bool = False
    error: str = ""

    @property
    def summary_line(self) -> str:
        return (f"kind={self.kind} letter={self.letter_id or '-'} "
                f"recipients={len(self.recipients)}")

    def as_json(self) -> dict:
        return {"kind": self.kind, "letter": self.letter_id, "recipients": self.recipients}


def match_letter(found: Classification) -> tuple[Letter | None, str]:
    """The letter `found` is about, and how it was matched (see the module docstring)."""
    for address in found.delivered_to:
        token = token_of(address)
        if token:
            letter = Letter.objects.filter(idempotency_key=token).first()
            if letter is not None:
                return letter, "verp"
    letter = selectors.letter_for_message_ids(found.message_ids)
    if letter is not None:
        return letter, "message_id"
    if found.kind in (kinds.BOUNCE, kinds.COMPLAINT):
        since = timezone.now() - MATCH_WINDOW
        for recipient in found.recipients:
            letter = (Letter.objects.filter(email__iexact=recipient.address,
                                            sent_at__gte=since)
                      .order_by("-sent_at", "-id").first())
            if letter is not None:
                return letter, "recipient"
    elif found.sender:
        letter = (Letter.objects.filter(email__iexact=found.sender,
                                        state__in=states.OUT_STATES)
                  .order_by("-sent_at", "-id").first())
        if letter is not None:
            return letter, "sender"
    return None, ""


def receive_raw(raw: bytes, *, source: str, dry_run: bool = False) -> Received:
    """Receive one RFC 5322 message as bytes (what an MTA pipes, what IMAP fetches)."""
    try:
        message = parse(raw)
    except UnreadableMessage as exc:
        return _keep_unreadable(raw, source, str(exc), dry_run=dry_run)
    return receive_message(message, source=source, raw=raw, dry_run=dry_run, dedupe=True)


def receive_message(message: Message, *, source: str, raw: bytes | None = None,
                    dry_run: bool = False, dedupe: bool = False) -> Received:
    """Receive one parsed message (an ESP's inbound webhook hands us these).

    Raw mail (an MTA's pipe, IMAP) is recorded once per content: those redeliver after a
    crash. An ESP's webhook is not: it resends only a call we answered with an error, and
    then nothing of it was recorded (one transaction per call).
    """
    if raw is None:
        try:
            raw = message.as_bytes()
        except Exception:  # a message the generator cannot write back: keep its text
            raw = mailtext.clean_text(str(message.get_payload())).encode("utf-8")
    found = classify(message)
    letter, matched_by = match_letter(found)
    kind = found.kind
    if kind == kinds.REPLY and letter is None:
        kind = kinds.UNMATCHED
    result = Received(kind=kind, letter_id=letter.pk if letter else None,
                      recipients=[r.as_json() for r in found.recipients],
                      matched_by=matched_by, reason=found.reason)
    if dry_run:
        return result
    digest = hashlib.sha256(raw).hexdigest() if dedupe else ""
    try:
        with transaction.atomic():
            stored = InboundMessage.objects.create(
                letter=letter, esp=mailtext.one_line(source, 40), kind=kind,
                reason=found.reason[:200], matched_by=matched_by,
                recipients=result.recipients, raw=raw[:kinds.MAX_MESSAGE_BYTES], digest=digest,
                from_email=found.sender or mailtext.header_text(message, "From", 254),
                to=", ".join(mailtext.addresses(message, "To"))[:2000],
                subject=found.subject,
                text=mailtext.body_text(message, "text/plain"),
                html=mailtext.body_text(message, "text/html"),
                message_id=mailtext.header_text(message, "Message-ID", 255),
                in_reply_to=" ".join(found.message_ids)[:2000],
            )
            if letter is not None:
                _act(letter, found, kind, stored, source, matched_by)
    except IntegrityError:
        existing = InboundMessage.objects.filter(digest=digest).first()
        if existing is None:
            raise
        result.duplicate, result.stored = True, existing
        return result
    result.stored = stored
    return result


def record_inbound(message: Message, esp_name: str) -> InboundMessage | None:
    """An ESP's inbound mail (anymail's inbound signal), received like any other: a bounce
    or an auto-reply that arrives this way is one, not a reply. Whatever the message holds
    (see letters.mailtext) it is stored: a stranger's broken mail must not make the webhook
    fail, or the ESP would send it again forever."""
    return receive_message(message, source=esp_name).stored


def _keep_unreadable(raw: bytes, source: str, error: str, *, dry_run: bool) -> Received:
    result = Received(kind=kinds.UNMATCHED, reason="unreadable message", error=error)
    if dry_run:
        return result
    digest = hashlib.sha256(raw).hexdigest()
    stored, created = InboundMessage.objects.get_or_create(
        digest=digest, defaults={
            "esp": mailtext.one_line(source, 40), "kind": kinds.UNMATCHED,
            "reason": "unreadable message", "raw": raw[:kinds.MAX_MESSAGE_BYTES],
            "parse_error": error[:300],
            "text": mailtext.clean_text(raw[:20_000].decode("utf-8", "replace")),
        })
    result.stored, result.duplicate = stored, not created
    return result


# Matches only a person who received the letter (or its mail system) could make: the VERP
# token is unguessable, the Message-ID is in the letter. A match by the bounced address alone
# could be forged by anyone who knows we wrote to it, so it marks the letter but suppresses
# nothing and moves no contact: staff see it on the letter's page and decide.
TRUSTED_MATCHES = ("verp", "message_id")


def _act(letter: Letter, found: Classification, kind: str, stored: InboundMessage,
         source: str, matched_by: str) -> None:
    data = {"via": source, "inbound": stored.pk, "matched_by": matched_by}
    trusted = matched_by in TRUSTED_MATCHES
    if kind == kinds.REPLY:
        move_letter(letter, states.REPLIED, data=data)
        return
    if kind == kinds.COMPLAINT:
        move_letter(letter, states.COMPLAINED, data={**data, "feedback": found.feedback_type})
        for recipient in (found.recipients or [kinds.BouncedRecipient(letter.email, "", True)]
                          if trusted else []):
            suppress_address(recipient.address, letter=letter, source="complaint",
                             reason=f"complaint ({found.feedback_type}) for letter {letter.pk}")
        return
    if kind != kinds.BOUNCE:
        return  # an auto-reply is kept on the letter and counts as nothing
    for recipient in found.recipients:
        LetterEvent.objects.create(
            letter=letter, esp=mailtext.one_line(source, 40),
            event_type="bounced" if recipient.permanent else "deferred",
            recipient=recipient.address[:254],
            message_id=stored.message_id,
            description=f"{recipient.status} {recipient.diagnostic}".strip()[:2000],
        )
    ours = [r for r in found.recipients if r.address.lower() == letter.email.lower()]
    permanent = [r for r in (ours or found.recipients) if r.permanent]
    if permanent:
        first = permanent[0]
        move_letter(letter, states.BOUNCED,
                    data={**data, "status": first.status, "recipient": first.address})
        if not trusted:
            return
        for recipient in permanent:
            suppress_address(recipient.address, letter=letter, source="bounce",
                             reason=f"bounce {recipient.status} for letter {letter.pk}")
        _fall_back(letter, [r.address for r in permanent],
                   reason=f"letter {letter.pk} bounced ({first.status})")


def _fall_back(letter: Letter, bounced: list[str], *, reason: str) -> None:
    """Each host the letter was about takes the next address of its contact's chain."""
    wanted = {address.lower() for address in bounced} | {letter.email.lower()}
    contacts = Contact.objects.filter(
        host__letter_links__letter=letter, host__letter_links__dropped=False).distinct()
    for contact in contacts:
        if contact.email.lower() in wanted:
            fall_back(contact, failed_email=contact.email, reason=reason)
