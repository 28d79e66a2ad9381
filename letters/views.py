"""Letter pages: build a batch, review it (four eyes), send it, follow each letter.

Thin, like campaign.views: check access, validate, call one service, render. The services
check the role and the four-eyes rule again, so a hand-made POST gets the same answer as
the command line: a builder or editor who tries to approve is refused (403) with the reason.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaign import selectors as campaign_selectors
from campaign.roles import has_perm
from campaign.views import require_perm
from letters import batches, errors, pages, sending, states, template_store
from letters.deliverability import deliverability as deliverability_figures
from letters.forms import (
    ApproveForm,
    BatchBuildForm,
    LetterFilterForm,
    RejectForm,
    RemoveLetterForm,
    ReturnedForm,
)
from letters.languages import ENGLISH, normalize
from letters.models import Batch
from letters.tasks import send_batch_task

# Service refusals a person can act on: shown on the batch page with this HTTP status.
REFUSALS = (errors.LetterError, states.IllegalTransition)


class _NothingToWrite(Exception):
    """Raised inside the build transaction to undo an empty batch."""


def _batch_page(request: HttpRequest, campaign, batch: Batch, *, status: int = 200,
                error: str = "", reload: bool = True, **forms) -> HttpResponse:
    if reload:  # after a refused service call: show the batch as it is now
        batch = pages.batch_for(campaign, batch.pk)
    context = {"campaign": campaign, "error": error,
               **pages.batch_context(request.user, batch, page=request.GET.get("page"),
                                     **forms)}
    return render(request, "letters/batch_detail.html", context, status=status)


@require_GET
@require_perm("review_batch")
def review_queue(request: HttpRequest) -> HttpResponse:
    return render(request, "letters/review_queue.html",
                  {"entries": pages.review_queue(request.user)})


@require_http_methods(["GET", "POST"])
@require_perm("build_batch")
def batch_create(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    form = BatchBuildForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                batch = batches.build_batch(
                    campaign=campaign, actor=request.user, language=data["language"] or None,
                    country=data["country"] or None, max_letters=data["max_letters"],
                )
                count = batch.letters.count()
                if not count:
                    raise _NothingToWrite
        except _NothingToWrite:
            form.add_error(None, "No host matches: every verified host with a contact is "
                                 "already in a letter, suppressed, or outside these filters.")
            if batch.screened.get("held_out") or batch.screened.get("waiting"):
                form.add_error(None, f"{batch.screened['held_out']} hosts are held out as the "
                                     f"control group; {batch.screened['waiting']} contacts "
                                     "wait for the interval between letters.")
        except errors.LetterError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Draft batch #{batch.pk} with {count} "
                                      f"letter{'s' if count != 1 else ''}. Check the "
                                      "previews, then submit it for review.")
            return redirect("batch_detail", slug=campaign.slug, pk=batch.pk)
    return render(request, "letters/batch_form.html", {"campaign": campaign, "form": form},
                  status=400 if form.errors else 200)


@require_GET
@require_perm("view_campaign")
def batch_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    return _batch_page(request, campaign, pages.visible_batch(request.user, campaign, pk),
                       reload=False)


@require_GET
@require_perm("view_campaign")
def batch_status(request: HttpRequest, slug: str, pk: int) -> JsonResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    batch = pages.visible_batch(request.user, campaign, pk)
    response = JsonResponse(pages.batch_status_data(batch))
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@require_perm("build_batch")
def batch_submit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    batch = pages.visible_batch(request.user, campaign, pk)
    try:
        batches.submit_batch(batch=batch, actor=request.user)
    except REFUSALS as exc:
        return _batch_page(request, campaign, batch, status=409, error=str(exc))
    messages.success(request, f"Batch #{batch.pk} is in the review queue; another person "
                              "must approve it.")
    return redirect("batch_detail", slug=campaign.slug, pk=batch.pk)


@require_POST
@require_perm("review_batch")
def batch_approve(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    batch = pages.visible_batch(request.user, campaign, pk)
    form = ApproveForm(request.POST)
    if not form.is_valid():
        return _batch_page(request, campaign, batch, status=400, approve_form=form)
    try:
        batches.approve_batch(batch=batch, actor=request.user,
                               comment=form.cleaned_data["comment"])
    except errors.FourEyesViolation as exc:
        return _batch_page(request, campaign, batch, status=403, error=str(exc))
    except REFUSALS as exc:
        return _batch_page(request, campaign, batch, status=409, error=str(exc))
    messages.success(request, f"Batch #{batch.pk} approved; its letters are ready to send.")
    return redirect("batch_detail", slug=campaign.slug, pk=batch.pk)


@require_POST
@require_perm("review_batch")
def batch_reject(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    batch = pages.visible_batch(request.user, campaign, pk)
    form = RejectForm(request.POST)
    if not form.is_valid():
        return _batch_page(request, campaign, batch, status=400, reject_form=form)
    try:
        batches.reject_batch(batch=batch, actor=request.user,
                              comment=form.cleaned_data["comment"])
    except REFUSALS as exc:
        return _batch_page(request, campaign, batch, status=409, error=str(exc))
    messages.success(request, f"Batch #{batch.pk} rejected; its hosts are free for a new "
                              "batch.")
    return redirect("batch_detail", slug=campaign.slug, pk=batch.pk)


@require_POST
@require_perm("send_batch")
def batch_send(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    batch = pages.visible_batch(request.user, campaign, pk)
    if batch.state == states.SENT:
        # The service would accept it (idempotent for redelivered tasks); a person pressing
        # the button again is told instead. A batch stuck in "sending" may be resumed.
        return _batch_page(request, campaign, batch, status=409,
                           error=f"batch {batch.pk} has already been sent")
    if batch.state in (states.APPROVED, states.SENDING):
        # Nothing leaves without the sender's explicit, current confirmation (the command
        # line `letters_batch send` is its own confirmation).
        form = pages.send_form_for(batch, request.POST)
        if not form.is_valid():
            return _batch_page(request, campaign, batch, status=400, send_form=form)
    try:
        batch = sending.start_sending(batch=batch, actor=request.user)
    except REFUSALS as exc:
        return _batch_page(request, campaign, batch, status=409, error=str(exc))
    # After commit, so the worker sees the batch as sending; the task is idempotent.
    transaction.on_commit(lambda: send_batch_task.delay(batch.pk))
    messages.success(request, f"Sending of batch #{batch.pk} queued.")
    return redirect("batch_detail", slug=campaign.slug, pk=batch.pk)


@require_GET
@require_perm("view_campaign")
def letter_list(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    form = LetterFilterForm(request.GET)
    state = form.cleaned_data["state"] if form.is_valid() else ""
    counts = pages.letter_state_counts(pages.visible_letters(campaign, request.user))
    return render(request, "letters/letter_list.html", {
        "campaign": campaign,
        "state": state,
        "state_counts": counts,
        "letters_total": sum(counts.values()),
        "letters_page": pages.letters_page(campaign, state=state, page=request.GET.get("page"),
                                           user=request.user),
    })


@require_GET
@require_perm("view_campaign")
def deliverability(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    return render(request, "letters/deliverability.html", {
        "campaign": campaign, **deliverability_figures(campaign, request.user)})


@require_GET
@require_perm("view_campaign")
def letter_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    letter = pages.visible_letter(request.user, campaign, pk)
    timeline, replies = pages.letter_timeline(letter)
    may_return = (letter.is_postal and letter.state == states.SENT
                  and has_perm(request.user, "send_batch"))
    return render(request, "letters/letter_detail.html", {
        "campaign": campaign,
        "letter": letter,
        "returned_form": ReturnedForm() if may_return else None,
        "links": pages.letter_links(letter),
        "timeline": timeline,
        "replies": replies,
    })


@require_GET
@require_perm("view_campaign")
def letter_preview(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The letter as it will leave, beside the same letter in English."""
    campaign = campaign_selectors.campaign_for(request.user, slug)
    letter = pages.visible_letter(request.user, campaign, pk)
    english = None
    if normalize(letter.language) != ENGLISH:
        # With the templates of the agency that writes it, as its own text was.
        english = template_store.renderer_for(letter).render(letter.kind, letter.context, ENGLISH)
    may_remove = (letter.batch.state in states.EDITABLE_BATCH_STATES
                  and letter.state in (states.DRAFT, states.QUEUED)
                  and has_perm(request.user, "build_batch"))
    return render(request, "letters/letter_preview.html", {
        "campaign": campaign,
        "letter": letter,
        "english": english,
        "remove_form": RemoveLetterForm() if may_remove else None,
    })


@require_POST
@require_perm("build_batch")
def letter_remove(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    letter = pages.visible_letter(request.user, campaign, pk)
    form = RemoveLetterForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the letter is taken out of the batch.")
        return redirect("letter_preview", slug=campaign.slug, pk=letter.pk)
    was = letter.batch.state
    try:
        batch = batches.remove_letter(letter=letter, actor=request.user,
                                       reason=form.cleaned_data["reason"])
    except REFUSALS as exc:
        return _batch_page(request, campaign, letter.batch, status=409, error=str(exc))
    note = " The batch is a draft again and needs a fresh review." if was != batch.state else ""
    messages.success(request, f"Letter #{letter.pk} to {letter.email} taken out of batch "
                              f"#{batch.pk}.{note}")
    return redirect("batch_detail", slug=campaign.slug, pk=batch.pk)
