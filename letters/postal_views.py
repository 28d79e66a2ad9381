"""The postal letters' pages: print a batch (PDF and address list), mark it posted, preview
one letter as printed, mark one returned. Thin: letters.postal.services checks the role,
the agency and the four-eyes state again."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from campaign import selectors as campaign_selectors
from campaign.views import require_perm
from letters import pages
from letters.forms import PostedForm, ReturnedForm
from letters.postal import services as postal
from letters.views import REFUSALS, _batch_page


def _download(data: bytes, content_type: str, filename: str, *, inline: bool = False
              ) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"  # names and addresses of third parties
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_GET
@require_perm("send_batch")
def batch_print(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    batch = pages.visible_batch(request.user, campaign, pk)
    try:
        printed = postal.print_batch(batch=batch, actor=request.user)
    except REFUSALS as exc:
        return _batch_page(request, campaign, batch, status=409, error=str(exc))
    return _download(printed.data, "application/pdf", f"batch-{batch.pk}-postal-letters.pdf")


@require_GET
@require_perm("send_batch")
def batch_addresses(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    batch = pages.visible_batch(request.user, campaign, pk)
    try:
        text = postal.batch_addresses_csv(batch=batch, actor=request.user)
    except REFUSALS as exc:
        return _batch_page(request, campaign, batch, status=409, error=str(exc))
    return _download(text.encode(), "text/csv; charset=utf-8",
                     f"batch-{batch.pk}-addresses.csv")


@require_POST
@require_perm("send_batch")
def batch_posted(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    batch = pages.visible_batch(request.user, campaign, pk)
    form = PostedForm(request.POST)
    if not form.is_valid():
        return _batch_page(request, campaign, batch, status=400, posted_form=form)
    try:
        moved = postal.mark_posted(batch=batch, actor=request.user,
                                   posted_on=form.cleaned_data["posted_on"])
    except REFUSALS as exc:
        return _batch_page(request, campaign, batch, status=409, error=str(exc))
    messages.success(request, f"{moved} postal letter{'s' if moved != 1 else ''} marked as "
                              f"posted on {form.cleaned_data['posted_on'].isoformat()}.")
    return redirect("batch_detail", slug=campaign.slug, pk=batch.pk)


@require_GET
@require_perm("view_campaign")
def letter_pdf(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """One postal letter as it prints (a draft watermark until its batch is approved)."""
    campaign = campaign_selectors.campaign_for(request.user, slug)
    letter = pages.visible_letter(request.user, campaign, pk)
    if not letter.is_postal:
        raise Http404(f"letter {letter.pk} goes by e-mail: it has no printed form")
    printed = postal.preview_pdf(letter)
    return _download(printed.data, "application/pdf", f"letter-{letter.pk}.pdf", inline=True)


@require_POST
@require_perm("send_batch")
def letter_returned(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    campaign = campaign_selectors.campaign_for(request.user, slug)
    letter = pages.visible_letter(request.user, campaign, pk)
    form = ReturnedForm(request.POST)
    if form.is_valid():
        try:
            postal.mark_returned(letter=letter, actor=request.user,
                                 reason=form.cleaned_data["reason"],
                                 returned_on=form.cleaned_data["returned_on"])
        except REFUSALS as exc:
            messages.error(request, str(exc))
        else:
            day = form.cleaned_data["returned_on"] or timezone.localdate()
            messages.success(request, f"Letter #{letter.pk} marked as returned by the post "
                                      f"on {day.isoformat()}.")
    else:
        messages.error(request, "Say what the post wrote on the returned letter.")
    return redirect("letter_detail", slug=campaign.slug, pk=letter.pk)
