"""Sending letters exactly once: a batch's queued letters, paced per domain, each claimed by
one worker; and the message each letter becomes.

A letter whose worker died between handing the message over and recording it stays claimed
("unconfirmed") until a person checks the mail server's log and releases it.
"""

from __future__ import annotations

import logging
import smtplib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.utils import getaddresses

from anymail.exceptions import AnymailInvalidAddress, AnymailRecipientsRefused
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaign import agencies
from campaign import states as host_states
from campaign.audit import record
from campaign.hosts import transition_host
from letters import cadence, catalogs, holdout, states
from letters.batches import drop_links, move_batch
from letters.dkim_signing import DkimKey, key_for, signature_header
from letters.errors import LetterError, check_perm
from letters.inbound.verp import verp_address
from letters.models import Batch, ContactPreference, Letter, LetterHost
from letters.throttle import Throttle, paced
from letters.tracking import suppress_address
from probes.contacts.records import clean_email
from probes.contacts.selectors import SuppressionList

log = logging.getLogger(__name__)


# Outcomes of send_letter
SENT = "sent"
FAILED = "failed"  # refused for good
RETRY = "retry"  # a temporary failure: the letter stays queued
SKIPPED = "skipped"  # another worker holds it, or it is no longer queued
CANCELLED = "cancelled"  # nothing left to say (hosts closed) or the address is suppressed
WAITING = "waiting"  # the recipient asked for business days only: stays queued until one


# The host state a letter's hosts must still be in when it leaves.
EXPECTED_HOST_STATE = {
    states.FIRST_NOTICE: host_states.CONTACT_RESOLVED,
    states.SECOND_NOTICE: host_states.NOTIFIED,
}


@dataclass
class SendSummary:
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    unconfirmed: int = 0
    waiting: int = 0  # queued until a business day in the recipient's time zone

    @property
    def line(self) -> str:
        return f"sent={self.sent} failed={self.failed}"


def throttle_from_settings() -> Throttle:
    return Throttle(
        per_minute=settings.LETTERS_PER_MINUTE,
        per_domain_per_minute=settings.LETTERS_PER_DOMAIN_PER_MINUTE,
    )


@transaction.atomic
def start_sending(*, batch: Batch, actor=None) -> Batch:
    """approved → sending (idempotent: a batch already sending or sent is returned as is)."""
    if actor is not None:
        check_perm(actor, "send_batch", "send letter batches")
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    if actor is not None:
        agencies.check_batch_agency(actor, batch)
    if batch.state in (states.SENDING, states.SENT):
        return batch
    if batch.state != states.APPROVED:
        raise LetterError(f"batch {batch.pk} is {batch.state}; only approved batches are sent")
    move_batch(batch, states.SENDING, actor=actor, action="batch.send",
               sending_started_at=timezone.now())
    return batch


# -- the message ----------------------------------------------------------------------------

class LetterMessage(EmailMultiAlternatives):
    """A letter as MIME for SMTP backends (ESP backends read the fields, not this MIME)."""

    dkim_key: DkimKey | None = None  # set by build_message when the agency signs

    def message(self):
        msg = super().message()
        if not self.subject.isascii():
            # Django folds a long encoded subject as "Subject:" + newline + encoded words,
            # which several parsers read back with a leading space. Encoded words on one
            # logical line, folded by the generator between words, read back exactly.
            encoded = Header(self.subject, "utf-8", header_name="Subject").encode()
            del msg["Subject"]
            msg["Subject"] = " ".join(encoded.split())
        if self.dkim_key is not None:
            # Signed last, over the bytes the SMTP backend sends (it writes CRLF lines).
            name, value = signature_header(msg.as_bytes(linesep="\r\n"), self.dkim_key)
            msg[name] = value
        return msg


class UnsendableLetter(LetterError):
    """A letter whose addresses could not make a safe message (refused for good)."""


def _one_address(value: object, what: str) -> str:
    """`value` if it is exactly one bare address on one line, else UnsendableLetter."""
    text = str(value or "").strip()
    if (not text or "\r" in text or "\n" in text or "@" not in text
            or getaddresses([text]) != [("", text)]):
        raise UnsendableLetter(f"{what} {value!r} is not one plain e-mail address")
    return text


def build_message(letter: Letter) -> EmailMultiAlternatives:
    """The letter as a message to its one recipient, whatever its stored values hold.

    The recipient must be a plain address (clean_email: no line break, no second address,
    no display name to smuggle one in), sender and reply-to one address each, the agency's
    name one line, quoted as a display name; else UnsendableLetter, and nothing is sent.
    """
    agency = letter.context["agency"]
    recipient = clean_email(letter.email)
    if recipient is None:
        raise UnsendableLetter(f"recipient {letter.email!r} is not one plain e-mail address")
    sender = _one_address(agency["sender_email"], "sender")
    shown_from = str(Address(display_name=" ".join(str(agency["name"]).split()),
                             addr_spec=sender))
    headers = {
        "Message-ID": letter.message_id,
        "Content-Language": letter.language,
        "X-Letter-Key": letter.idempotency_key,
        "Auto-Submitted": "auto-generated",
    }
    # Through an ESP the ESP handles bounces (webhooks) and signs; through our own SMTP the
    # envelope sender names the letter (VERP: any bounce finds its letter) and we sign.
    own_smtp = not settings.EMAIL_BACKEND.startswith("anymail.")
    return_path = verp_address(letter.idempotency_key, agency.get("bounce_domain"))
    if return_path and own_smtp:
        headers["From"] = shown_from
    else:
        return_path = shown_from
    message = LetterMessage(
        subject=letter.subject,
        body=letter.body_text,
        from_email=return_path,
        to=[recipient],
        reply_to=[_one_address(agency["reply_to"], "reply-to")],
        headers=headers,
    )
    message.attach_alternative(letter.body_html, "text/html")
    if own_smtp:
        message.dkim_key = key_for(agency, sender)
    # anymail: echoed back on tracking events, so events find their letter without ids.
    message.metadata = {"letter": letter.idempotency_key}
    message.tags = ["letter", letter.kind]
    return message


# -- one letter, a batch ---------------------------------------------------------------------

_PERMANENT = (AnymailRecipientsRefused, AnymailInvalidAddress, smtplib.SMTPRecipientsRefused)


def _release(letter_id: int, token: str, error: str) -> None:
    Letter.objects.filter(pk=letter_id, claim_token=token).update(
        claimed_at=None, claim_token="", last_error=error[:2000]
    )


def _finish(letter: Letter, token: str, target: str, *, error: str = "", **fields) -> bool:
    now = timezone.now()
    moved = Letter.objects.filter(pk=letter.pk, claim_token=token, state=states.QUEUED).update(
        state=target, state_changed_at=now, last_error=error[:2000], **fields
    )
    if moved == 1:
        record(f"letter.{target}", campaign_id=letter.campaign_id, obj=letter,
               data={"email": letter.email, "error": error[:500], **{
                   k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items()
               }})
    return moved == 1


def _closed_links(letter: Letter) -> tuple[list[LetterHost], int]:
    links = list(letter.letter_hosts.filter(dropped=False).select_related("host"))
    expected = EXPECTED_HOST_STATE[letter.kind]
    closed = [link for link in links if link.host.state != expected]
    return closed, len(links)


def business_day_wait(letter_id: int, now: datetime) -> cadence.Waiting | None:
    """Why the letter must wait for a business day (its contacts asked on their page)."""
    zones = ContactPreference.objects.filter(
        business_days_only=True, contact__host__letter_links__letter_id=letter_id,
        contact__host__letter_links__dropped=False,
    ).values_list("time_zone", flat=True)
    return cadence.business_day_wait(list(zones), now)


def send_letter(letter_id: int, *, connection=None,
                suppressions: SuppressionList | None = None) -> str:
    """Send one queued letter at most once; returns SENT, FAILED, RETRY, SKIPPED, CANCELLED
    or WAITING (not a business day for its recipient: it stays queued, saying why).

    The claim is a conditional UPDATE (queued and unclaimed → claimed by us): of two workers
    handed the same letter, one gets it. The claim is released only when the send failed
    before the message left (so a retry cannot duplicate it); a worker that dies between
    handing the message over and recording it leaves the claim in place, and the letter is
    reported as unconfirmed for a person to check rather than sent again.
    """
    wait = business_day_wait(letter_id, timezone.now())
    if wait is not None:
        note = f"waiting: {wait.reason}; not before {wait.until.isoformat()}"
        kept = Letter.objects.filter(
            pk=letter_id, state=states.QUEUED, claimed_at__isnull=True
        ).update(last_error=note)
        return WAITING if kept else SKIPPED
    token = uuid.uuid4().hex
    claimed = Letter.objects.filter(
        pk=letter_id, state=states.QUEUED, claimed_at__isnull=True, channel=states.EMAIL
    ).update(claimed_at=timezone.now(), claim_token=token, attempts=F("attempts") + 1)
    if claimed != 1:
        return SKIPPED
    letter = Letter.objects.select_related("batch").get(pk=letter_id)
    suppressions = suppressions or SuppressionList.load()
    hit = suppressions.match(letter.email)
    if hit:
        _finish(letter, token, states.CANCELLED, error=f"on the do-not-contact list: {hit}")
        return CANCELLED
    if holdout.is_held_out(letter.campaign_id, letter.email):
        # Belt and braces: the builder never writes to the control group; nor does a send.
        _finish(letter, token, states.CANCELLED, error="held out as a control")
        return CANCELLED
    closed, total = _closed_links(letter)
    if closed:
        # Found closed (or otherwise moved on) on a re-test after approval: drop, with a note.
        with transaction.atomic():
            left = drop_links(letter, closed, note="no longer open on a re-test before sending")
        if not left:
            Letter.objects.filter(pk=letter.pk).update(claim_token="", claimed_at=None)
            return CANCELLED
        letter.refresh_from_db()
    missing = catalogs.problem(letter.language)
    if missing is not None:
        # This process has no catalog for the letter's language (a deployment that skipped
        # compile_translations): never send a letter in a language other than the one it says.
        # Kept queued, not failed: the fault is this process's, and a worker that has the
        # catalog (or this one, restarted after compile_translations) sends it later.
        log.error("letter %s not sent: %s", letter.pk, missing)
        _release(letter.pk, token, f"not sent: {missing}")
        return RETRY
    try:
        message = build_message(letter)
        message.message()  # a header Django refuses (BadHeaderError) fails here, not half-sent
    except ImproperlyConfigured as exc:
        # This server's set-up (a DKIM key it cannot read): the letter is not at fault. Kept
        # queued, unclaimed, saying why; sent once the configuration is fixed.
        log.error("letter %s not sent: %s", letter.pk, exc)
        _release(letter.pk, token, f"not sent: {exc}")
        return RETRY
    except (UnsendableLetter, BadHeaderError, ValueError) as exc:
        _finish(letter, token, states.FAILED, error=f"not sent: {exc}")
        return FAILED
    try:
        if connection is not None:
            connection.send_messages([message])
        else:
            message.send()
    except _PERMANENT as exc:
        _finish(letter, token, states.FAILED, error=f"{type(exc).__name__}: {exc}")
        suppress_address(letter.email, reason=f"refused when sending letter {letter.pk}: {exc}",
                         source="bounce", letter=letter)
        return FAILED
    except Exception as exc:  # temporary until proven otherwise: keep it queued
        log.warning("letter %s not sent: %s", letter.pk, exc)
        _release(letter.pk, token, f"{type(exc).__name__}: {exc}")
        return RETRY
    # anymail backends report the ESP's id (the test backend's ids start at 0); Django's
    # own backends keep our Message-ID, which the ESP or MTA passes on unchanged.
    status = getattr(message, "anymail_status", None)
    esp_id = getattr(status, "message_id", None)
    if esp_id is None:
        esp_id = letter.message_id
    now = timezone.now()
    with transaction.atomic():
        if not _finish(letter, token, states.SENT, sent_at=now, esp_message_id=str(esp_id)[:255]):
            return SKIPPED
        for link in letter.letter_hosts.filter(dropped=False).select_related("host"):
            if link.host.state == host_states.CONTACT_RESOLVED:
                transition_host(link.host, host_states.NOTIFIED, reason="letter sent",
                                data={"letter": letter.pk})
    return SENT


def finish_batch_if_done(batch: Batch) -> bool:
    """sending → sent once no e-mail is waiting (claimed-but-unconfirmed ones wait too);
    postal letters wait for staff to post them (letters.postal), not for the mailer."""
    if batch.letters.filter(state=states.QUEUED, channel=states.EMAIL).exists():
        return False
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch.pk)
        if batch.state != states.SENDING:
            return False
        move_batch(batch, states.SENT, actor=None, action="batch.sent", sent_at=timezone.now())
    return True


def send_batch(
    *,
    batch: Batch,
    actor=None,
    connection=None,
    throttle: Throttle | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int, int], None] | None = None,
) -> SendSummary:
    """Send every queued letter of an approved (or resumed) batch, paced by the throttle."""
    batch = start_sending(batch=batch, actor=actor)
    summary = SendSummary()
    if batch.state == states.SENT:
        return summary  # a repeated command or a redelivered task: nothing left to do
    todo = list(
        batch.letters.filter(state=states.QUEUED, claimed_at__isnull=True, channel=states.EMAIL)
        .order_by("id").values_list("id", "email")
    )
    suppressions = SuppressionList.load()
    connection = connection or get_connection()
    pace = throttle or throttle_from_settings()
    with connection:
        for done, letter_id in enumerate(
            paced(((i, e.rpartition("@")[2].lower()) for i, e in todo), pace, sleep), 1
        ):
            outcome = send_letter(letter_id, connection=connection, suppressions=suppressions)
            if outcome == SENT:
                summary.sent += 1
            elif outcome in (FAILED, RETRY):
                summary.failed += 1
            elif outcome == CANCELLED:
                summary.cancelled += 1
            elif outcome == WAITING:
                summary.waiting += 1
            else:
                summary.skipped += 1
            if progress is not None:
                progress(done, len(todo))
    summary.unconfirmed = batch.letters.filter(
        state=states.QUEUED, claimed_at__isnull=False).count()
    finish_batch_if_done(batch)
    return summary


def release_claim(*, letter: Letter, actor, reason: str) -> bool:
    """Let a person put an unconfirmed letter back in the queue after checking the ESP's log."""
    check_perm(actor, "send_batch", "release letters for sending")
    released = Letter.objects.filter(
        pk=letter.pk, state=states.QUEUED, claimed_at__isnull=False
    ).update(claimed_at=None, claim_token="")
    if released:
        record("letter.release", actor=actor, campaign_id=letter.campaign_id, obj=letter,
               data={"reason": reason})
    return bool(released)
