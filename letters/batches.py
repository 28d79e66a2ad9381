"""Letter batches: building one (a letter per contact), review (four eyes), and edits.

A batch is built as a draft, submitted, approved by a reviewer who neither built nor edited
it (or rejected), then sent (letters.sending). Each function checks the acting user's
permission itself, so the pages and the command line get the same rules.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from campaign import agencies
from campaign import states as host_states
from campaign.audit import record
from campaign.automation import record_system_step
from campaign.models import Agency, Campaign, Host
from letters import cadence, holdout, selectors, shortlinks, states
from letters.errors import ConcurrentChange, FourEyesViolation, LetterError, check_perm
from letters.models import Batch, Letter, LetterHost
from letters.parallel_render import render_letters
from letters.recipient import letter_url
from letters.rendering import LetterRenderer
from letters.template_store import (
    agency_context,
    letter_context,
    letter_settings,
    load_renderer,
    render_letter,
    renderer_for,
)


def make_message_id(key: str, sender: str) -> str:
    """A letter's Message-ID, fixed when it is built: replies and ESP events find it by it."""
    domain = sender.rpartition("@")[2] or "localhost"
    return f"<letter.{key}@{domain}>"


def move_batch(batch: Batch, target: str, *, actor, action: str, data: dict | None = None,
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
    system: bool = False,
) -> Batch:
    """Create a draft batch: one letter per contact (and notice kind) listing all its hosts.

    The batch belongs to the builder's agency (see campaign.agencies.acting_agency) and takes
    only the hosts routed to it: in a joint campaign each agency writes its own letters.
    `system`: drafted by the campaign's automation (no actor), reviewed by people as any.
    """
    if system:
        if actor is not None:
            raise ValueError("a system draft has no actor")
    else:
        check_perm(actor, "build_batch", "build letter batches")
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
    # Both draw and pace by e-mail address: a postal letter (the end of the fallback chain,
    # for a host that was written to or had no address at all) passes both.
    by_post = [f for f in findings if f.postal_address]
    held = holdout.screen_findings(campaign, [f for f in findings if not f.postal_address],
                                   now=now)
    paced_out = cadence.screen_findings(campaign, held.kept, agency=writer, now=now)
    findings = paced_out.kept + by_post
    screened = cadence.screened_summary(held.held_out_hosts, held.held_out_contacts, paced_out)
    groups: dict[tuple[str, str], list[selectors.Finding]] = {}
    for finding in findings:
        key = (finding.kind, finding.recipient_key)
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
    if actor is not None:
        batch.editors.add(actor)
    letters: list[Letter] = []
    for (kind, _recipient), group in groups.items():
        language_votes = Counter(f.language for f in group)
        hosts = [{"ip": f.ip, "country": f.country, "evidence": f.evidence} for f in group]
        first_at = min((first_dates[f.host_id] for f in group if f.host_id in first_dates),
                       default=None)
        context = letter_context(campaign=campaign, agency=agency, kind=kind, hosts=hosts,
                                 first_notice_at=first_at, now=now)
        key = uuid.uuid4().hex
        letter = Letter(
            batch=batch, campaign=campaign, kind=kind, state=states.DRAFT,
            email=group[0].email, postal_address=group[0].postal_address,
            language=language_votes.most_common(1)[0][0], bilingual=bilingual,
            idempotency_key=key, message_id=make_message_id(key, agency["sender_email"]),
            context=context, created_at=now, state_changed_at=now,
        )
        if letter.postal_address:
            letter.channel = states.POSTAL
            # Typed from paper: a short link, not the long signed one (letters.postal).
            letter.short_code = shortlinks.new_short_code()
            context["recipient_url"] = shortlinks.short_url(letter.short_code)
        else:
            context["recipient_url"] = letter_url(key)  # the recipient's own page (signed)
        letters.append(letter)
    render_letters(letters, renderer)
    _fast_compression()
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


def _fast_compression() -> None:
    """Compress what this transaction stores with lz4 where the server has it.

    A letter's bodies and context are TOASTed: with PostgreSQL's default pglz, compressing
    10,000 of them is most of the INSERT; lz4 does it about ten times faster, and reads them
    back faster too. A server built without lz4 refuses the setting: then pglz it is.
    """
    if _LZ4.get(connection.alias) is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                           "WHERE name = 'default_toast_compression'")
            row = cursor.fetchone()
        _LZ4[connection.alias] = bool(row and row[0])
    if _LZ4[connection.alias]:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL default_toast_compression = 'lz4'")


# Whether each database's server was built with lz4 (asked once per process).
_LZ4: dict[str, bool] = {}


def draft_daily_batches(*, now: datetime | None = None) -> list[Batch]:
    """Campaign automation: a draft batch per language and writing agency, for the campaigns
    that ask for one every day. Languages without a finding get none; hosts already in a
    live batch are not taken again (the builder leaves them out), so a draft nobody has
    reviewed yet is not duplicated by the next day's."""
    drafted = []
    for campaign in Campaign.objects.filter(status=Campaign.ACTIVE, auto_draft_batches=True):
        route = agencies.router(campaign)
        findings = selectors.open_findings(campaign)
        for writer in agencies.participants(campaign):
            languages = sorted({f.language for f in findings
                                if route.route(f.country) == writer.pk})
            for language in languages:
                batch = _system_draft(campaign, writer, language, now)
                if batch is not None:
                    drafted.append(batch)
    return drafted


def _system_draft(campaign: Campaign, writer: Agency, language: str,
                  now: datetime | None) -> Batch | None:
    with transaction.atomic():
        batch = build_batch(campaign=campaign, actor=None, system=True, language=language,
                            agency=writer, now=now)
        letters = batch.letters.count()
        if not letters:
            # Everyone screened out (control group, cadence): no empty draft to review.
            transaction.set_rollback(True)
            return None
        record_system_step("batch_draft", campaign, obj=batch, language=language,
                           agency=writer.name, letters=letters)
    return batch


def _live_letters(batch: Batch):
    return batch.letters.exclude(state__in=[states.CANCELLED, states.FAILED])


@transaction.atomic
def submit_batch(*, batch: Batch, actor, comment: str = "") -> Batch:
    check_perm(actor, "build_batch", "submit letter batches")
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    agencies.check_batch_agency(actor, batch)
    if not _live_letters(batch).exists():
        raise LetterError(f"batch {batch.pk} has no letters to review")
    move_batch(batch, states.SUBMITTED, actor=actor, action="batch.submit",
               data={"comment": comment}, submitted_at=timezone.now())
    # Whoever puts a batch up for review answers for it, like its builder.
    batch.editors.add(actor)
    return batch


@transaction.atomic
def approve_batch(*, batch: Batch, actor, comment: str = "") -> Batch:
    check_perm(actor, "review_batch", "approve letter batches (only reviewers may)")
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    agencies.check_batch_agency(actor, batch)
    if batch.created_by_id == actor.pk or batch.editors.filter(pk=actor.pk).exists():
        raise FourEyesViolation(
            f"{actor} built or edited batch {batch.pk} and so cannot approve it: "
            "a second reviewer must"
        )
    move_batch(batch, states.APPROVED, actor=actor, action="batch.approve",
               data={"comment": comment}, reviewed_by=actor, reviewed_at=timezone.now(),
               review_comment=comment)
    _move_letters(batch.letters.all(), states.QUEUED)
    return batch


@transaction.atomic
def reject_batch(*, batch: Batch, actor, comment: str) -> Batch:
    check_perm(actor, "review_batch", "reject letter batches (only reviewers may)")
    if not comment or not comment.strip():
        raise LetterError("say why the batch is rejected (--comment)")
    batch = Batch.objects.select_for_update().get(pk=batch.pk)
    agencies.check_batch_agency(actor, batch)
    move_batch(batch, states.REJECTED, actor=actor, action="batch.reject",
               data={"comment": comment.strip()}, reviewed_by=actor,
               reviewed_at=timezone.now(), review_comment=comment.strip())
    # The hosts are free for another batch.
    _move_letters(batch.letters.all(), states.CANCELLED)
    return batch


# -- edits ----------------------------------------------------------------------------------

def _mark_edited(batch: Batch, actor, what: str, data: dict) -> None:
    """Record an edit: the editor may no longer approve, and a reviewed batch goes back."""
    batch.editors.add(actor)
    if batch.state in (states.SUBMITTED, states.APPROVED):
        move_batch(batch, states.DRAFT, actor=actor, action="batch.reopen",
                   data={"because": what})
        _move_letters(batch.letters.filter(state=states.QUEUED), states.DRAFT)
    record("batch.edit", actor=actor, campaign_id=batch.campaign_id, obj=batch,
           data={"edit": what, **data})


def _locked_editable(batch: Batch, actor) -> Batch:
    check_perm(actor, "build_batch", "edit letter batches")
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
    drop_links(link.letter, [link], note=reason)
    _mark_edited(batch, actor, "host removed", {"ip": host.ip, "reason": reason})
    return batch


def _add_note(batch: Batch, note: dict) -> None:
    # Appending in SQL would be nicer; notes are rare, and the batch row is locked here.
    notes = list(Batch.objects.filter(pk=batch.pk).values_list("notes", flat=True).first() or [])
    notes.append({"at": timezone.now().isoformat(), **note})
    Batch.objects.filter(pk=batch.pk).update(notes=notes)
    batch.notes = notes


def drop_links(letter: Letter, links: list[LetterHost], *, note: str,
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
    render_letter(letter, renderer or renderer_for(letter))
    letter.save(update_fields=["context", "subject", "body_text", "body_html"])
    return True
