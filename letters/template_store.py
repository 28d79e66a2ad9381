"""What letters are written from: each agency's copies of the templates (per language), the
campaign's letter settings, the agency's letterhead and the JSON context of a letter; and
rendering a letter with them (letters.rendering is the sandboxed renderer itself).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaign import agencies
from campaign.audit import record
from campaign.models import Agency, Campaign
from letters import catalogs
from letters.errors import LetterError, check_perm
from letters.languages import ENGLISH, LANGUAGES, normalize
from letters.models import Letter, LetterSettings, LetterTemplate
from letters.rendering import LetterRenderer, check_template, resolve_overrides

# -- the campaign's letter settings ---------------------------------------------------------

def letter_settings(campaign: Campaign) -> LetterSettings:
    found, _ = LetterSettings.objects.get_or_create(campaign=campaign)
    return found


def set_bilingual(*, campaign: Campaign, bilingual: bool, actor) -> LetterSettings:
    check_perm(actor, "build_batch", "change how letters are written")
    found = letter_settings(campaign)
    if found.bilingual != bilingual:
        found.bilingual = bilingual
        found.save(update_fields=["bilingual"])
        record("letters.bilingual", actor=actor, campaign_id=campaign.pk, obj=found,
               data={"bilingual": bilingual})
    return found


# -- templates ------------------------------------------------------------------------------

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
    check_perm(actor, "build_batch", "edit letter templates")
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
    check_perm(actor, "build_batch", "edit letter templates")
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
        "dkim_selector": agency.dkim_selector,
        "dkim_key_file": agency.dkim_key_file,
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


def render_letter(letter: Letter, renderer: LetterRenderer) -> None:
    """Write a letter's subject and bodies from its context (a language whose catalog this
    process lacks refuses: LetterError)."""
    context = letter.context
    if letter.is_postal:
        # The printed page carries the letterhead at its head (letters.postal), not the text.
        context = {**context, "agency": {**context["agency"], "letterhead": ""}}
    try:
        rendered = renderer.render(letter.kind, context, letter.language,
                                   bilingual=letter.bilingual)
    except catalogs.MissingCatalog as exc:
        raise LetterError(str(exc)) from None  # the batch is not built: nothing half-English
    letter.subject = rendered.subject
    letter.body_text = rendered.text
    # A postal letter keeps the sections alone: the print layout goes around them.
    letter.body_html = rendered.sections if letter.is_postal else rendered.html
