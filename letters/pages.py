"""What the staff pages show about batches and letters.

Each function reads a fixed, small number of rows whatever the number of letters, hosts or
events (counts come from correlated subqueries or GROUP BYs, never a query per row), so a
batch of 10,000 letters pages as fast as one of ten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from campaign import agencies
from campaign.models import AuditEvent, Campaign, Host
from campaign.roles import has_perm
from campaign.services import visible_campaigns
from letters import selectors, states
from letters.forms import ApproveForm, PostedForm, RejectForm, SendForm
from letters.models import Batch, InboundMessage, Letter, LetterEvent, LetterHost

LETTERS_PER_PAGE = 50
IPS_SHOWN = 3
# Letter fields a list needs; the bodies and the JSON context can be large.
LIST_FIELDS = ("id", "batch_id", "campaign_id", "kind", "state", "email", "language",
               "bilingual", "subject", "created_at", "state_changed_at", "sent_at",
               "delivered_at", "bounced_at", "complained_at", "replied_at", "last_error",
               "channel", "postal_address", "posted_at", "returned_at")


def _live_host_count() -> Coalesce:
    return Coalesce(Subquery(
        LetterHost.objects.filter(letter=OuterRef("pk"), dropped=False)
        .order_by().values("letter").annotate(n=Count("id")).values("n"),
        output_field=IntegerField(),
    ), 0)


def _letter_count() -> Coalesce:
    return Coalesce(Subquery(
        Letter.objects.filter(batch=OuterRef("pk"))
        .exclude(state__in=[states.CANCELLED, states.FAILED])
        .order_by().values("batch").annotate(n=Count("id")).values("n"),
        output_field=IntegerField(),
    ), 0)


def _first_ips() -> Prefetch:
    # A sliced prefetch: the first few hosts of each letter in one windowed query.
    return Prefetch(
        "letter_hosts",
        queryset=LetterHost.objects.filter(dropped=False).select_related("host")
        .only("id", "letter_id", "host_id", "host__ip").order_by("id")[:IPS_SHOWN],
        to_attr="first_links",
    )


# --- batches -------------------------------------------------------------------------------


def batches_with_counts(qs: QuerySet[Batch]) -> QuerySet[Batch]:
    return qs.select_related("created_by", "reviewed_by").annotate(letter_count=_letter_count())


def campaign_batches(campaign: Campaign, *, limit: int = 10, user=None) -> list[Batch]:
    scope = agencies.batch_scope(user)
    return list(batches_with_counts(Batch.objects.filter(scope, campaign=campaign))
                .order_by("-created_at", "-id")[:limit])


def batch_for(campaign: Campaign, pk: int) -> Batch:
    batch = (Batch.objects.select_related("created_by", "reviewed_by")
             .filter(campaign=campaign, pk=pk).first())
    if batch is None:
        raise Http404("no such batch")
    return batch


def visible_batch(user, campaign: Campaign, pk: int) -> Batch:
    """A batch of the campaign that the user's agency may see; 404 otherwise."""
    batch = batch_for(campaign, pk)
    if not agencies.batch_visible(user, campaign, batch.agency_id):
        raise Http404("no such batch")
    return batch


def visible_letters(campaign: Campaign, user=None) -> QuerySet[Letter]:
    """The campaign's letters that the user's agency may see (all of them for users bound to
    no agency).

    For staff of one agency the letters are picked by the ids of the campaign's batches it
    may see, not through a join on their batch: PostgreSQL then counts and pages them from
    the (batch, state) index, where the join read the whole letter table (two such scans per
    letters page, ~70 ms each at 50,000 letters, many times that on a busy machine). A
    letter's campaign is always its batch's (the builder writes both), so it is the same set.
    """
    agency_id = agencies.viewer_agency_id(user)
    if agency_id is None:
        return Letter.objects.filter(campaign=campaign)
    batches = Batch.objects.filter(agencies.agency_batches(agency_id), campaign=campaign)
    return Letter.objects.filter(batch__in=batches.values("id"))


def letter_state_counts(qs: QuerySet[Letter]) -> dict[str, int]:
    rows = dict(qs.order_by().values_list("state").annotate(n=Count("*")))  # index-only
    return {s: rows.get(s, 0) for s in states.LETTER_STATES if rows.get(s)}


def batch_letters_page(batch: Batch, page: str | int | None) -> Page:
    qs = (batch.letters.only(*LIST_FIELDS).order_by("id")
          .annotate(host_count=_live_host_count()).prefetch_related(_first_ips()))
    return Paginator(qs, LETTERS_PER_PAGE).get_page(page)


@dataclass(frozen=True)
class BatchView:
    """Who may do what on a batch page, decided once for the template and the tests."""

    can_submit: bool
    can_review: bool
    can_approve: bool
    is_editor: bool
    can_send: bool
    can_edit: bool


def batch_view(user, batch: Batch, editor_ids: set[int]) -> BatchView:
    # Four eyes: whoever built or edited the batch gets no approve button (and the service
    # refuses them anyway if they post the form by hand).
    is_editor = user.pk == batch.created_by_id or user.pk in editor_ids
    reviewer = has_perm(user, "review_batch")
    submitted = batch.state == states.SUBMITTED
    return BatchView(
        can_submit=batch.state == states.DRAFT and has_perm(user, "build_batch"),
        can_review=submitted and reviewer,
        can_approve=submitted and reviewer and not is_editor,
        is_editor=is_editor,
        can_send=batch.state == states.APPROVED and has_perm(user, "send_batch"),
        can_edit=batch.state in states.EDITABLE_BATCH_STATES and has_perm(user, "build_batch"),
    )


def letters_to_send(batch: Batch) -> tuple[int, int]:
    """(letters, distinct recipients) that sending the batch now would hand to the mailer:
    the queued letters no worker has claimed, as sending.send_batch picks them."""
    todo = batch.letters.filter(state=states.QUEUED, claimed_at__isnull=True,
                                channel=states.EMAIL)
    row = todo.aggregate(letters=Count("id"), recipients=Count("email", distinct=True))
    return row["letters"], row["recipients"]


def send_form_for(batch: Batch, data=None) -> SendForm:
    letters, recipients = letters_to_send(batch)
    return SendForm(data, letters=letters, recipients=recipients)


def batch_context(user, batch: Batch, *, page: str | int | None = None,
                  approve_form: ApproveForm | None = None,
                  reject_form: RejectForm | None = None,
                  send_form: SendForm | None = None,
                  posted_form: PostedForm | None = None) -> dict:
    editors = list(batch.editors.order_by("username"))
    view = batch_view(user, batch, {u.pk for u in editors})
    counts = letter_state_counts(batch.letters.all())
    if send_form is None and view.can_send:
        send_form = send_form_for(batch)
    return {
        "batch": batch,
        "editors": editors,
        "view": view,
        "letters_page": batch_letters_page(batch, page),
        "state_counts": counts,
        "letters_total": sum(counts.values()),
        "approve_form": approve_form or (ApproveForm() if view.can_approve else None),
        "reject_form": reject_form or (RejectForm() if view.can_review else None),
        "send_form": send_form,
        "sending": batch.state == states.SENDING,
        "postal": postal_summary(user, batch, posted_form),
    }


def postal_summary(user, batch: Batch, posted_form: PostedForm | None = None) -> dict | None:
    """The batch page's postal letters: how many to print, posted, returned; what the user
    may do with them. None when the batch has none."""
    counts = dict(batch.letters.filter(channel=states.POSTAL).values_list("state")
                  .annotate(n=Count("id")))
    if not counts:
        return None
    reviewed = batch.state in (states.APPROVED, states.SENDING, states.SENT)
    may = reviewed and has_perm(user, "send_batch")
    to_print = counts.get(states.QUEUED, 0)
    return {
        "total": sum(n for s, n in counts.items() if s not in (states.CANCELLED,
                                                               states.FAILED)),
        "to_print": to_print,
        "posted": counts.get(states.SENT, 0) + counts.get(states.REPLIED, 0),
        "returned": counts.get(states.BOUNCED, 0),
        "reviewed": reviewed,
        "can_print": may,
        "posted_form": (posted_form or PostedForm(initial={"posted_on": timezone.localdate()}))
        if may and to_print else None,
    }


def batch_status_data(batch: Batch) -> dict:
    counts = letter_state_counts(batch.letters.all())
    # The mailer's progress: postal letters wait for the print room, not for it.
    waiting = batch.letters.filter(state=states.QUEUED, channel=states.EMAIL).count()
    total = sum(n for s, n in counts.items() if s != states.DRAFT) - (
        counts.get(states.QUEUED, 0) - waiting)
    done = total - waiting
    return {
        "id": batch.pk,
        "status": batch.state,
        "status_label": batch.get_state_display(),
        "finished": batch.state != states.SENDING,
        "done": done,
        "total": total,
        "percent": int(100 * done / total) if total else 100,
        "by_state": {s: counts.get(s, 0) for s in states.LETTER_STATES},
    }


@dataclass(frozen=True)
class QueueEntry:
    batch: Batch
    languages: list[tuple[str, int]]


def review_queue(user) -> list[QueueEntry]:
    """Submitted batches of the campaigns the user may see, oldest first (three queries)."""
    editor = Batch.editors.through.objects.filter(batch_id=OuterRef("pk"), user_id=user.pk)
    batches = list(
        batches_with_counts(
            Batch.objects.filter(agencies.batch_scope(user), state=states.SUBMITTED,
                                 campaign__in=visible_campaigns(user).values("pk"))
        )
        .select_related("campaign", "campaign__agency")
        .annotate(host_count=Coalesce(Subquery(
            LetterHost.objects.filter(letter__batch=OuterRef("pk"), dropped=False)
            .exclude(letter__state__in=[states.CANCELLED, states.FAILED])
            .order_by().values("letter__batch").annotate(n=Count("id")).values("n"),
            output_field=IntegerField()), 0),
            mine=Exists(editor))
        .order_by("submitted_at", "id")
    )
    languages: dict[int, list[tuple[str, int]]] = {}
    if batches:
        rows = (Letter.objects.filter(batch_id__in=[b.pk for b in batches])
                .exclude(state__in=[states.CANCELLED, states.FAILED])
                .order_by().values_list("batch_id", "language").annotate(n=Count("id")))
        for batch_id, language, n in rows:
            languages.setdefault(batch_id, []).append((language, n))
    return [QueueEntry(b, sorted(languages.get(b.pk, []), key=lambda x: (-x[1], x[0])))
            for b in batches]


# --- letters -------------------------------------------------------------------------------


def letters_page(campaign: Campaign, *, state: str = "", page: str | int | None = None,
                 user=None) -> Page:
    qs = visible_letters(campaign, user)
    if state:
        qs = qs.filter(state=state)
    qs = (qs.only(*LIST_FIELDS).order_by("-id")
          .annotate(host_count=_live_host_count()).prefetch_related(_first_ips()))
    return Paginator(qs, LETTERS_PER_PAGE).get_page(page)


def letter_for(campaign: Campaign, pk: int) -> Letter:
    letter = (Letter.objects.select_related("batch", "batch__created_by")
              .filter(campaign=campaign, pk=pk).first())
    if letter is None:
        raise Http404("no such letter")
    return letter


def visible_letter(user, campaign: Campaign, pk: int) -> Letter:
    """A letter of the campaign that the user's agency may see; 404 otherwise."""
    letter = letter_for(campaign, pk)
    if not agencies.batch_visible(user, campaign, letter.batch.agency_id):
        raise Http404("no such letter")
    return letter


def letter_links(letter: Letter) -> list[LetterHost]:
    return list(letter.letter_hosts.select_related("host").order_by("dropped", "id"))


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # audit, tracking, reply
    title: str
    actor: str = ""
    detail: str = ""
    anchor: str = ""


AUDIT_TITLES = {
    "batch.create": "Batch built", "batch.submit": "Batch submitted for review",
    "batch.approve": "Batch approved", "batch.reject": "Batch rejected",
    "batch.reopen": "Batch reopened for editing", "batch.edit": "Batch edited",
    "batch.send": "Sending started", "batch.sent": "Batch sent",
    # Postal letters (letters/postal).
    "batch.printed": "Postal letters printed", "batch.posted": "Postal letters posted",
    "letter.returned": "Returned by the post",
    # From the recipient's page (letters/recipient.py).
    "letter.recipient_retest": "Recipient asked for a re-test",
    "letter.recipient_feedback": "Recipient wrote on their page",
    "contact.review_requested": "Contact flagged for review by the recipient",
}


def _audit_detail(event: AuditEvent) -> str:
    data = event.data or {}
    for key in ("comment", "reason", "error", "description", "edit"):
        if data.get(key):
            return str(data[key])
    return ""


def letter_timeline(letter: Letter) -> tuple[list[TimelineEntry], list[InboundMessage]]:
    """Everything that happened to a letter and its batch, oldest first, and its replies.

    Three queries: the audit events of the letter and its batch, the ESP's tracking events,
    and the inbound replies.
    """
    audit = (
        AuditEvent.objects.filter(
            Q(object_type="letter", object_id=str(letter.pk))
            | Q(object_type="batch", object_id=str(letter.batch_id))
        ).select_related("actor").order_by("at", "id")
    )
    entries = [
        TimelineEntry(
            at=e.at, kind="audit",
            title=AUDIT_TITLES.get(e.action, e.action.replace("letter.", "Letter ")),
            actor=e.actor.get_username() if e.actor else "system", detail=_audit_detail(e),
        )
        for e in audit
    ]
    entries += [
        TimelineEntry(at=e.at, kind="tracking", title=f"{e.esp}: {e.event_type}",
                      detail=e.description)
        for e in LetterEvent.objects.filter(letter=letter).order_by("at", "id")
    ]
    replies = list(InboundMessage.objects.filter(letter=letter).order_by("received_at", "id"))
    entries += [
        # A reply left on the recipient page has no sender address (whoever holds the link).
        TimelineEntry(at=r.received_at, kind="reply",
                      title=f"{r.get_kind_display()} from {r.from_email}" if r.from_email.strip()
                      else f"{r.get_kind_display()} (sender unknown)",
                      detail=r.subject, anchor=f"reply-{r.pk}")
        for r in replies
    ]
    entries.sort(key=lambda e: e.at)
    return entries, replies


def host_letters(host: Host, user=None) -> list[LetterHost]:
    """The letters written about a host, oldest first, for the host page (one query)."""
    return list(
        LetterHost.objects.filter(agencies.batch_scope(user, via="letter__batch__"),
                                  host_id=host.pk).select_related("letter")
        .only("id", "dropped", "host_id", "letter_id", *(f"letter__{f}" for f in LIST_FIELDS
                                                          if f != "id"))
        .order_by("letter__created_at", "letter_id")
    )


def campaign_panel(user, campaign: Campaign) -> dict:
    """The campaign page's letters card: counts by state and the latest batches."""
    if agencies.viewer_agency_id(user) is None:
        counts = selectors.letter_counts(campaign)
    else:  # staff of one agency count only their agency's letters and batches
        counts = {
            "by_state": letter_state_counts(visible_letters(campaign, user)),
            "batches": dict(Batch.objects.filter(agencies.batch_scope(user), campaign=campaign)
                            .order_by().values_list("state").annotate(n=Count("id"))),
        }
    return {
        "letter_counts": {s: n for s, n in counts["by_state"].items() if n},
        "letters_total": sum(counts["by_state"].values()),
        "batches_awaiting": counts["batches"].get(states.SUBMITTED, 0),
        "batches": campaign_batches(campaign, user=user),
        "may_build_batch": has_perm(user, "build_batch"),
    }


def host_panel(host: Host, user=None) -> dict:
    return {"host_letters": host_letters(host, user)}
