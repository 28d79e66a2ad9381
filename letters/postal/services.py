"""Printing a batch's postal letters, marking them posted (queued → sent) and returned
(sent → bounced).

Printing and posting are the postal letter's sending: they need the sender's permission and
a reviewed batch of the sender's own agency, and posting notifies the letter's hosts. A
returned letter tells the contact's fallback chain that the address is no way to reach the
owner (probes.contacts).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time

from django.db import transaction
from django.utils import timezone

from campaign import agencies
from campaign import states as host_states
from campaign.audit import record
from campaign.hosts import transition_host
from letters import states
from letters.batches import move_batch
from letters.errors import LetterError, check_perm
from letters.models import Batch, Letter, LetterHost
from letters.postal import printing
from probes.contacts.fallback import postal_returned
from probes.contacts.models import Contact

# A batch whose letters may be printed and posted: a reviewer approved it.
REVIEWED_BATCH_STATES = frozenset({states.APPROVED, states.SENDING, states.SENT})


def _moment(day: date | None, *, not_before: datetime | None, what: str) -> datetime:
    """When on `day` it happened: now for today (or no day given), else that day's noon."""
    now = timezone.now()
    if day is None or day == timezone.localdate(now):
        moment = now
    else:
        moment = timezone.make_aware(datetime.combine(day, time(12)))
    if moment > now:
        raise LetterError(f"{what} {day.isoformat()} is in the future")
    if not_before is not None and timezone.localdate(moment) < timezone.localdate(not_before):
        raise LetterError(f"{what} {day.isoformat()} is before the letter could leave "
                          f"({timezone.localdate(not_before).isoformat()})")
    return moment


def postal_letters(batch: Batch):
    """The batch's postal letters that are to be printed or were posted, in batch order."""
    return (batch.letters.filter(channel=states.POSTAL)
            .exclude(state__in=[states.CANCELLED, states.FAILED]).order_by("id"))


def _fresh(batch: Batch) -> Batch:
    return Batch.objects.select_related("agency", "campaign__agency").get(pk=batch.pk)


def _reviewed_batch(batch: Batch, actor, doing: str) -> Batch:
    """The batch, if it is approved and `actor` may send it (actor None: the shell's own
    operator, as `letters_batch send` without --by)."""
    if actor is not None:
        check_perm(actor, "send_batch", doing)
        agencies.check_batch_agency(actor, batch)
    if batch.state not in REVIEWED_BATCH_STATES:
        raise LetterError(f"batch {batch.pk} is {batch.state}: only an approved batch's "
                          "letters are printed and posted (four eyes)")
    return batch


def print_batch(*, batch: Batch, actor) -> printing.PrintedPdf:
    """The print room's PDF: every postal letter of an approved batch not yet posted or
    given up (queued), else, for a reprint, every posted one."""
    batch = _reviewed_batch(_fresh(batch), actor, "print postal letters")
    letters = list(postal_letters(batch).filter(state=states.QUEUED))
    if not letters:
        letters = list(postal_letters(batch).filter(state=states.SENT))
    if not letters:
        raise LetterError(f"batch {batch.pk} has no postal letters to print")
    fmt = printing.page_format(batch.agency or batch.campaign.agency)
    pdf = printing.render_pdf(letters, fmt=fmt)
    record("batch.printed", actor=actor, campaign_id=batch.campaign_id, obj=batch,
           data={"letters": pdf.letters, "pages": pdf.pages, "format": fmt.name})
    return pdf


def batch_addresses_csv(*, batch: Batch, actor) -> str:
    batch = _reviewed_batch(_fresh(batch), actor, "export postal addresses")
    return printing.addresses_csv(postal_letters(batch))


def preview_pdf(letter: Letter) -> printing.PrintedPdf:
    """One letter as it will print; marked as a draft until its batch is approved (a page's
    view permission is checked by the page)."""
    batch = letter.batch
    fmt = printing.page_format(batch.agency or batch.campaign.agency)
    return printing.render_pdf([letter], fmt=fmt,
                               draft=batch.state not in REVIEWED_BATCH_STATES)


@transaction.atomic
def mark_posted(*, batch: Batch, actor, posted_on: date | None = None,
                letter_ids: Iterable[int] | None = None) -> int:
    """Mark the batch's queued postal letters (or those of `letter_ids`) posted; returns how
    many moved. Marking twice moves nothing the second time."""
    batch = _reviewed_batch(Batch.objects.select_for_update().get(pk=batch.pk), actor,
                            "mark postal letters as posted")
    moment = _moment(posted_on, not_before=batch.reviewed_at, what="posting date")
    queued = batch.letters.filter(channel=states.POSTAL, state=states.QUEUED)
    if letter_ids is not None:
        wanted = set(letter_ids)
        unknown = wanted - set(batch.letters.filter(pk__in=wanted, channel=states.POSTAL)
                               .values_list("pk", flat=True))
        if unknown:
            raise LetterError(f"not postal letters of batch {batch.pk}: "
                              f"{', '.join(map(str, sorted(unknown)))}")
        queued = queued.filter(pk__in=wanted)
    letters = list(queued.select_for_update())
    now = timezone.now()
    Letter.objects.filter(pk__in=[x.pk for x in letters], state=states.QUEUED).update(
        state=states.SENT, state_changed_at=now, sent_at=moment, posted_at=moment)
    links = LetterHost.objects.filter(letter__in=letters, dropped=False,
                                      host__state=host_states.NO_CONTACT).select_related("host")
    for link in links:
        transition_host(link.host, host_states.NOTIFIED, actor=actor,
                        reason="postal letter posted", data={"letter": link.letter_id},
                        after_bounce=True)  # the fallback chain's end
    if letters:
        record("batch.posted", actor=actor, campaign_id=batch.campaign_id, obj=batch,
               data={"letters": [x.pk for x in letters], "posted_on": moment.date().isoformat()})
        if batch.state == states.APPROVED and not batch.letters.filter(
                channel=states.EMAIL).exclude(state__in=[states.CANCELLED]).exists():
            # A batch of postal letters only: posting them was its sending.
            move_batch(batch, states.SENDING, actor=actor, action="batch.send",
                       sending_started_at=now)
            move_batch(batch, states.SENT, actor=actor, action="batch.sent", sent_at=now)
    return len(letters)


@transaction.atomic
def mark_returned(*, letter: Letter, actor, reason: str, returned_on: date | None = None
                  ) -> Letter:
    """The post brought a posted letter back (moved, unknown, refused): sent → bounced."""
    check_perm(actor, "send_batch", "mark postal letters as returned")
    letter = Letter.objects.select_for_update().select_related("batch").get(pk=letter.pk)
    agencies.check_batch_agency(actor, letter.batch)
    reason = " ".join((reason or "").split())
    if not reason:
        raise LetterError("say why the post returned it (e.g. 'addressee unknown')")
    if not letter.is_postal:
        raise LetterError(f"letter {letter.pk} went by e-mail; its bounces come by mail")
    if letter.state != states.SENT:
        raise LetterError(f"letter {letter.pk} is {letter.state}: only a posted letter "
                          "can come back")
    moment = _moment(returned_on, not_before=letter.posted_at, what="return date")
    Letter.objects.filter(pk=letter.pk).update(
        state=states.BOUNCED, state_changed_at=timezone.now(), bounced_at=moment,
        returned_at=moment, last_error=f"returned by the post: {reason}"[:2000])
    record("letter.returned", actor=actor, campaign_id=letter.campaign_id, obj=letter,
           data={"reason": reason, "returned_on": moment.date().isoformat()})
    contacts = Contact.objects.filter(host__letter_links__letter=letter,
                                      host__letter_links__dropped=False)
    for contact in contacts:
        postal_returned(contact, address=letter.postal_address, reason=reason,
                        first_notice=letter.kind == states.FIRST_NOTICE)
    letter.refresh_from_db()
    return letter
