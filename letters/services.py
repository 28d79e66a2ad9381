"""Writes for letters: building and reviewing batches, sending exactly once, tracking.

Views, commands, Celery tasks and webhook receivers call these; each function checks the
acting user's permission itself, so every interface gets the same four-eyes rule.
"""

from __future__ import annotations

import logging
import smtplib
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.headerregistry import Address
from email.utils import getaddresses

from anymail.exceptions import AnymailInvalidAddress, AnymailRecipientsRefused
from anymail.signals import EventType
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from campaign import agencies
from campaign import states as host_states
from campaign.audit import record
from campaign.hosts import transition_host
from campaign.models import Agency, Campaign, Host
from campaign.roles import has_perm
from letters import cadence, catalogs, holdout, mailtext, selectors, states
from letters.inbound.verp import verp_address
from letters.languages import ENGLISH, LANGUAGES, normalize
from letters.models import (
    Batch,
    ContactPreference,
    InboundMessage,
    Letter,
    LetterEvent,
    LetterHost,
    LetterSettings,
    LetterTemplate,
)
from letters.recipient import letter_url
from letters.rendering import LetterRenderer, check_template, resolve_overrides
from letters.throttle import Throttle, paced
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


class LetterError(Exception):
    """A request that cannot be carried out, with a sentence a person understands."""


class FourEyesViolation(PermissionDenied):
    pass


class ConcurrentChange(LetterError):
    pass


def _require(actor, codename: str, doing: str) -> None:
    if actor is None or not has_perm(actor, codename):
        raise PermissionDenied(f"{actor or 'nobody'} may not {doing}")


# -- settings and templates ---------------------------------------------------------------

def letter_settings(campaign: Campaign) -> LetterSettings:
    found, _ = LetterSettings.objects.get_or_create(campaign=campaign)
    return found


def set_bilingual(*, campaign: Campaign, bilingual: bool, actor) -> LetterSettings:
    _require(actor, "build_batch", "change how letters are written")
    found = letter_settings(campaign)
    if found.bilingual != bilingual:
        found.bilingual = bilingual
        found.save(update_fields=["bilingual"])
        record("letters.bilingual", actor=actor, campaign_id=campaign.pk, obj=found,
               data={"bilingual": bilingual})
    return found


def _template_language(language: str | None) -> str:
    code = normalize(language) if language else ENGLISH
    if code not in LANGUAGES:
        raise LetterError(f"{language!r} is not a letter language")
    return code


def _scope_name(agency_id: int | None) -> str | None:
    return Agency.objects.filter(pk=agency_id).values_list("name", flat=True).first()


def save_template(*, name: str, source: str, actor, language: str = ENGLISH) -> LetterTemplate:
    """Store a staff edit of a template, in one language, after checking that it renders.

    The copy is the actor's agency's (an admin bound to no agency edits the installation's,
    which agencies without a copy of their own use); other languages keep theirs.
    """
    _require(actor, "build_batch", "edit letter templates")
    language = _template_language(language)
    check_template(name, source, language)
    agency_id = agencies.viewer_agency_id(actor)
    template, _ = LetterTemplate.objects.update_or_create(
        agency_id=agency_id, name=name, language=language,
        defaults={"source": source, "updated_by": actor, "updated_at": timezone.now()},
    )
    record("letters.template", actor=actor, obj=template,
           data={"name": name, "language": language, "agency": _scope_name(agency_id)})
    return template


@transaction.atomic
def revert_template(*, name: str, language: str, actor) -> bool:
    """Drop the actor's agency's copy of a template in one language (False: it had none).

    The agency's letters then use the installation's copy, else the shipped template. The
    source goes into the audit log, so a revert can be undone by hand.
    """
    _require(actor, "build_batch", "edit letter templates")
    language = _template_language(language)
    agency_id = agencies.viewer_agency_id(actor)
    template = LetterTemplate.objects.select_for_update().filter(
        agency_id=agency_id, name=name, language=language).first()
    if template is None:
        return False
    record("letters.template_revert", actor=actor, obj=template,
           data={"name": name, "language": language, "agency": _scope_name(agency_id),
                 "source": template.source})
    template.delete()
    return True


def template_overrides(agency_id: int | None) -> dict[str, dict[str, str]]:
    """{language: {name: source}} an agency's letters use: its copies, else the installation's."""
    scope = Q(agency__isnull=True)
    if agency_id is not None:
        scope |= Q(agency_id=agency_id)
    return resolve_overrides(LetterTemplate.objects.filter(scope).values_list(
        "agency_id", "name", "language", "source"))


def load_renderer(agency: Agency | int | None = None) -> LetterRenderer:
    """A renderer with the templates `agency` writes with (one query), to reuse for a batch.

    Without an agency: the installation's copies only.
    """
    return LetterRenderer(by_language=template_overrides(getattr(agency, "pk", agency)))


def letter_agency_id(letter: Letter) -> int:
    """The agency that writes a letter: its batch's (older batches: the campaign's lead)."""
    return letter.batch.agency_id or Campaign.objects.values_list(
        "agency_id", flat=True).get(pk=letter.campaign_id)


def renderer_for(letter: Letter) -> LetterRenderer:
    return load_renderer(letter_agency_id(letter))


# -- letter contents ------------------------------------------------------------------------

def agency_context(campaign: Campaign, agency: Agency | None = None) -> dict:
    """The sender, letterhead, signature and links of the agency writing (default: lead)."""
    agency = agency or campaign.agency
    sender = agency.sender_email or settings.DEFAULT_FROM_EMAIL
    return {
        "name": agency.name,
        "letterhead": agency.letterhead,
        "signature": agency.signature,
        "sender_email": sender,
        "reply_to": agency.reply_to or sender,
        "bounce_domain": agency.bounce_domain or settings.BOUNCE_DOMAIN,
        "info_url": agency.info_url,
        "instructions_url": agency.instructions_url,
    }


def letter_context(*, campaign: Campaign, agency: dict, kind: str, hosts: list[dict],
                   first_notice_at: datetime | None, now: datetime) -> dict:
    """The JSON a letter is rendered from (stored with it, re-rendered from it)."""
    return {
        "kind": kind,
        "agency": agency,
        "campaign": {"slug": campaign.slug, "name": campaign.name},
        "hosts": hosts,
        "retest_after": (now + timedelta(days=campaign.followup_delay_days)).date().isoformat(),
        "first_notice_at": first_notice_at.isoformat() if first_notice_at else None,
    }


def make_message_id(key: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "localhost"
    return f"<letter.{key}@{domain}>"


def _apply_rendering(letter: Letter, renderer: LetterRenderer) -> None:
    try:
        rendered = renderer.render(letter.kind, letter.context, letter.language,
                                   bilingual=letter.bilingual)
    except catalogs.MissingCatalog as exc:
        raise LetterError(str(exc)) from None  # the batch is not built: nothing half-English
    letter.subject = rendered.subject
    letter.body_text = rendered.text
    letter.body_html = rendered.html


# -- batches --------------------------------------------------------------------------------

def _move_batch(batch: Batch, target: str, *, actor, action: str, data: dict | None = None,
                **fields) -> None:
    """The only writer of Batch.state: a conditional UPDATE plus its audit event."""
    states.check_batch_transition(batch.state, target)
    now = timezone.now()
    values = {"state": target, "state_changed_at": now, **fields}
    moved = Batch.objects.filter(pk=batch.pk, state=batch.state).update(**values)
    if moved != 1:
        raise ConcurrentChange(f"batch {batch.pk} changed meanwhile; look at it again")
    record(action, actor=actor, campaign_id=batch.campaign_id, obj=batch,
           data={"from": batch.state, "to": target, **(data or {})})
    for name, value in values.items():
        setattr(batch, name, value)


def _move_letters(letters_qs, target: str) -> int:
    now = timezone.now()
    return letters_qs.filter(state__in=states.letter_sources(target)).update(
        state=target, state_changed_at=now
    )


@transaction.atomic
def build_batch(
    *,
    campaign: Campaign,
    actor,
    language: str | None = None,
    country: str | None = None,
    max_letters: int | None = None,
    now: datetime | None = None,
    agency: Agency | None = None,
) -> Batch:
    """Create a draft batch: one letter per contact (and notice kind) listing all its hosts.

    The batch belongs to the builder's agency (see campaign.agencies.acting_agency) and takes
    only the hosts routed to it: in a joint campaign each agency writes its own letters.
    """
    _require(actor, "build_batch", "build letter batches")
    if max_letters is not None and max_letters < 1:
        raise LetterError("--max must be at least 1")
    now = now or timezone.now()
    # One builder at a time per campaign, so two batches never take the same hosts.
    campaign = Campaign.objects.select_for_update().select_related("agency").get(pk=campaign.pk)
    try:
        findings = selectors.open_findings(campaign, country=country, language=language)
    except ValueError as exc:
        raise LetterError(str(exc)) from None
    writer = agencies.acting_agency(actor, campaign, agency)
    route = agencies.router(campaign)
    findings = [f for f in findings if route.route(f.country) == writer.pk]
    # The control group never gets a letter; a contact written to recently waits its turn.
    held = holdout.screen_findings(campaign, findings, now=now)
    paced_out = cadence.screen_findings(campaign, held.kept, agency=writer, now=now)
    findings = paced_out.kept
    screened = cadence.screened_summary(held.held_out_hosts, held.held_out_contacts, paced_out)
    groups: dict[tuple[str, str], list[selectors.Finding]] = {}
    for finding in findings:
        key = (finding.kind, finding.email)
        if key not in groups and max_letters is not None and len(groups) >= max_letters:
            continue
        groups.setdefault(key, []).append(finding)
    second_ids = [f.host_id for fs in groups.values() for f in fs
                  if f.kind == states.SECOND_NOTICE]
    first_dates = selectors.first_notice_dates(second_ids) if second_ids else {}
    missing = [i for i in second_ids if i not in first_dates]
    if missing:
        # Notified before letters were tracked here: the day it was marked notified.
        first_dates.update(Host.objects.filter(pk__in=missing, state=host_states.NOTIFIED)
                           .values_list("id", "state_changed_at"))
    bilingual = letter_settings(campaign).bilingual
    agency = agency_context(campaign, writer)
    renderer = load_renderer(writer)
    batch = Batch.objects.create(
        campaign=campaign, agency=writer, created_by=actor, created_at=now, state_changed_at=now,
        screened=screened,
        filters={"language": language or "", "country": (country or "").upper(),
                 "max": max_letters},
    )
    batch.editors.add(actor)
    letters: list[Letter] = []
    for (kind, email), group in groups.items():
        language_votes = Counter(f.language for f in group)
        hosts = [{"ip": f.ip, "country": f.country, "evidence": f.evidence} for f in group]
        first_at = min((first_dates[f.host_id] for f in group if f.host_id in first_dates),
                       default=None)
        context = letter_context(campaign=campaign, agency=agency, kind=kind, hosts=hosts,
                                 first_notice_at=first_at, now=now)
        key = uuid.uuid4().hex
        context["recipient_url"] = letter_url(key)  # the recipient's own page (signed link)
        letter = Letter(
            batch=batch, campaign=campaign, kind=kind, state=states.DRAFT, email=email,
            language=language_votes.most_common(1)[0][0], bilingual=bilingual,
            idempotency_key=key, message_id=make_message_id(key, agency["sender_email"]),
            context=context, created_at=now, state_changed_at=now,
        )
        _apply_rendering(letter, renderer)
        letters.append(letter)
    Letter.objects.bulk_create(letters)
    links = [
        LetterHost(letter=letter, host_id=f.host_id, retest_id=f.retest_id, evidence=f.evidence)
        for letter, group in zip(letters, groups.values(), strict=True)
        for f in group
    ]
    LetterHost.objects.bulk_create(links)
    record("batch.create", actor=actor, campaign_id=campaign.pk, obj=batch,
           data={**batch.filters, "letters": len(letters), "hosts": len(links)})
    return batch


def _live_letters(batch: Batch):
    return batch.letters.exclude(state__in=[states.CANCELLED, states.FAILED])


@transaction.atomic
def submit_batch(*, batch: Batch, actor, comment: str = "") -> Batch:
    _require(actor, "build_batch", "submit letter batches")
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    agencies.check_batch_agency(actor, batch)
    if not _live_letters(batch).exists():
        raise LetterError(f"batch {batch.pk} has no letters to review")
    _move_batch(batch, states.SUBMITTED, actor=actor, action="batch.submit",
                data={"comment": comment}, submitted_at=timezone.now())
    # Whoever puts a batch up for review answers for it, like its builder.
    batch.editors.add(actor)
    return batch


@transaction.atomic
def approve_batch(*, batch: Batch, actor, comment: str = "") -> Batch:
    _require(actor, "review_batch", "approve letter batches (only reviewers may)")
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    agencies.check_batch_agency(actor, batch)
    if batch.created_by_id == actor.pk or batch.editors.filter(pk=actor.pk).exists():
        raise FourEyesViolation(
            f"{actor} built or edited batch {batch.pk} and so cannot approve it: "
            "a second reviewer must"
        )
    _move_batch(batch, states.APPROVED, actor=actor, action="batch.approve",
                data={"comment": comment}, reviewed_by=actor, reviewed_at=timezone.now(),
                review_comment=comment)
    _move_letters(batch.letters.all(), states.QUEUED)
    return batch


@transaction.atomic
def reject_batch(*, batch: Batch, actor, comment: str) -> Batch:
    _require(actor, "review_batch", "reject letter batches (only reviewers may)")
    if not comment or not comment.strip():
        raise LetterError("say why the batch is rejected (--comment)")
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    agencies.check_batch_agency(actor, batch)
    _move_batch(batch, states.REJECTED, actor=actor, action="batch.reject",
                data={"comment": comment.strip()}, reviewed_by=actor,
                reviewed_at=timezone.now(), review_comment=comment.strip())
    # The hosts are free for another batch.
    _move_letters(batch.letters.all(), states.CANCELLED)
    return batch


def _mark_edited(batch: Batch, actor, what: str, data: dict) -> None:
    """Record an edit: the editor may no longer approve, and a reviewed batch goes back."""
    batch.editors.add(actor)
    if batch.state in (states.SUBMITTED, states.APPROVED):
        _move_batch(batch, states.DRAFT, actor=actor, action="batch.reopen",
                    data={"because": what})
        _move_letters(batch.letters.filter(state=states.QUEUED), states.DRAFT)
    record("batch.edit", actor=actor, campaign_id=batch.campaign_id, obj=batch,
           data={"edit": what, **data})


def _locked_editable(batch: Batch, actor) -> Batch:
    _require(actor, "build_batch", "edit letter batches")
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    agencies.check_batch_agency(actor, batch)
    if batch.state not in states.EDITABLE_BATCH_STATES:
        raise LetterError(f"batch {batch.pk} is {batch.state} and can no longer be edited")
    return batch


@transaction.atomic
def remove_letter(*, letter: Letter, actor, reason: str) -> Batch:
    """Take one letter out of its batch (its hosts become free for another batch)."""
    batch = _locked_editable(letter.batch, actor)
    _move_letters(Letter.objects.filter(pk=letter.pk), states.CANCELLED)
    _add_note(batch, {"letter": letter.pk, "email": letter.email, "note": reason,
                      "by": actor.get_username()})
    _mark_edited(batch, actor, "letter removed", {"letter": letter.pk, "reason": reason})
    return batch


@transaction.atomic
def remove_host(*, batch: Batch, host: Host, actor, reason: str) -> Batch:
    """Take one host out of the batch's letter about it; the letter is rewritten without it."""
    batch = _locked_editable(batch, actor)
    link = LetterHost.objects.select_related("letter").filter(
        letter__batch=batch, host=host, dropped=False).first()
    if link is None:
        raise LetterError(f"{host.ip} is not in batch {batch.pk}")
    _drop_links(link.letter, [link], note=reason)
    _mark_edited(batch, actor, "host removed", {"ip": host.ip, "reason": reason})
    return batch


def _add_note(batch: Batch, note: dict) -> None:
    # Appending in SQL would be nicer; notes are rare, and the batch row is locked here.
    notes = list(Batch.objects.filter(pk=batch.pk).values_list("notes", flat=True).first() or [])
    notes.append({"at": timezone.now().isoformat(), **note})
    Batch.objects.filter(pk=batch.pk).update(notes=notes)
    batch.notes = notes


def _drop_links(letter: Letter, links: list[LetterHost], *, note: str,
                renderer: LetterRenderer | None = None) -> bool:
    """Drop hosts from a letter and rewrite it; returns False if no host is left."""
    dropped_ips = {link.host.ip for link in links}
    LetterHost.objects.filter(pk__in=[link.pk for link in links]).update(dropped=True)
    context = dict(letter.context)
    context["hosts"] = [h for h in context["hosts"] if h["ip"] not in dropped_ips]
    for ip in sorted(dropped_ips):
        _add_note(letter.batch, {"letter": letter.pk, "ip": ip, "note": note})
        record("batch.host_dropped", campaign_id=letter.campaign_id, obj=letter.batch,
               data={"letter": letter.pk, "ip": ip, "note": note})
    if not context["hosts"]:
        _move_letters(Letter.objects.filter(pk=letter.pk), states.CANCELLED)
        letter.state = states.CANCELLED
        return False
    letter.context = context
    _apply_rendering(letter, renderer or renderer_for(letter))
    letter.save(update_fields=["context", "subject", "body_text", "body_html"])
    return True


# -- sending --------------------------------------------------------------------------------

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
        per_minute=getattr(settings, "LETTERS_PER_MINUTE", 120),
        per_domain_per_minute=getattr(settings, "LETTERS_PER_DOMAIN_PER_MINUTE", 20),
    )


@transaction.atomic
def start_sending(*, batch: Batch, actor=None) -> Batch:
    """approved → sending (idempotent: a batch already sending or sent is returned as is)."""
    if actor is not None:
        _require(actor, "send_batch", "send letter batches")
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    if actor is not None:
        agencies.check_batch_agency(actor, batch)
    if batch.state in (states.SENDING, states.SENT):
        return batch
    if batch.state != states.APPROVED:
        raise LetterError(f"batch {batch.pk} is {batch.state}; only approved batches are sent")
    _move_batch(batch, states.SENDING, actor=actor, action="batch.send",
                sending_started_at=timezone.now())
    return batch


class LetterMessage(EmailMultiAlternatives):
    """A letter as MIME for SMTP backends (ESP backends read the fields, not this MIME)."""

    def message(self):
        msg = super().message()
        if not self.subject.isascii():
            # Django folds a long encoded subject as "Subject:" + newline + encoded words,
            # which several parsers read back with a leading space. Encoded words on one
            # logical line, folded by the generator between words, read back exactly.
            encoded = Header(self.subject, "utf-8", header_name="Subject").encode()
            del msg["Subject"]
            msg["Subject"] = " ".join(encoded.split())
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
    # The envelope sender names the letter (VERP): any bounce, whatever sends it back,
    # finds its letter. Through an ESP the ESP's own bounce handling (webhooks) does that.
    return_path = verp_address(letter.idempotency_key, agency.get("bounce_domain"))
    if return_path and not settings.EMAIL_BACKEND.startswith("anymail."):
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
    # anymail: echoed back on tracking events, so events find their letter without ids.
    message.metadata = {"letter": letter.idempotency_key}
    message.tags = ["letter", letter.kind]
    return message


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
        pk=letter_id, state=states.QUEUED, claimed_at__isnull=True
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
            left = _drop_links(letter, closed, note="no longer open on a re-test before sending")
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
    """sending → sent once no letter is waiting (claimed-but-unconfirmed ones wait too)."""
    if batch.letters.filter(state=states.QUEUED).exists():
        return False
    with transaction.atomic():
        batch = Batch.objects.select_for_update().get(pk=batch.pk)
        if batch.state != states.SENDING:
            return False
        _move_batch(batch, states.SENT, actor=None, action="batch.sent", sent_at=timezone.now())
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
        batch.letters.filter(state=states.QUEUED, claimed_at__isnull=True)
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
    _require(actor, "send_batch", "release letters for sending")
    released = Letter.objects.filter(
        pk=letter.pk, state=states.QUEUED, claimed_at__isnull=False
    ).update(claimed_at=None, claim_token="")
    if released:
        record("letter.release", actor=actor, campaign_id=letter.campaign_id, obj=letter,
               data={"reason": reason})
    return bool(released)


# -- tracking and replies -------------------------------------------------------------------

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
    """Put a bounced or complaining address on the do-not-contact list, as the agency whose
    letter it was (a failure to do so is logged, never raised: the event is still kept)."""
    from probes.contacts.services import ContactError, suppress

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


MAX_REFERENCES = 100  # a References header may list a whole thread; the latest ids suffice


def _header_ids(message, name: str) -> list[str]:
    ids = []
    for value in mailtext.header_values(message, name):
        ids += [part[:255] for part in mailtext.one_line(value).replace(",", " ").split()]
    return ids


def record_inbound(message, esp_name: str) -> InboundMessage | None:
    """An ESP's inbound mail, received like any other (letters.inbound.receive): a bounce or
    an auto-reply that arrives this way is one, not a reply.

    Whatever the message holds (see letters.mailtext) it is stored: a stranger's broken mail
    must not make the webhook fail, or the ESP would send it again forever.
    """
    from letters.inbound.receive import receive_message

    received = receive_message(message, source=esp_name)
    return InboundMessage.objects.filter(pk=received.stored_id).first()
