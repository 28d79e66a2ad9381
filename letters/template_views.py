"""The letter template editor: one template in one language, previewed live, for the admin role.

The editor previews a draft through the same sandboxed renderer that writes the letters
(letters.rendering), on a sample letter; a broken or malicious template comes back as a form
error, never as a 500 and never executed outside the sandbox. Saving and reverting go through
letters.template_store, which checks the role and writes the audit log.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from jinja2 import TemplateError
from jinja2.exceptions import SecurityError

from campaign import agencies
from campaign.models import Agency
from campaign.views import require_perm
from letters.languages import ENGLISH, LANGUAGE_NAMES, LANGUAGES
from letters.models import LetterTemplate
from letters.rendering import (
    EDITABLE_TEMPLATES,
    KINDS,
    SAMPLE_CONTEXT,
    TEMPLATE_DIR,
    LetterRenderer,
    Rendered,
)
from letters.template_store import revert_template, save_template, template_overrides

# Only the admin role holds change_campaign (campaign.roles).
ADMIN_PERM = "change_campaign"
MAX_SOURCE = 100_000  # characters: a template is a page of text, not a payload


class TemplateForm(forms.Form):
    source = forms.CharField(widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false"}),
                             max_length=MAX_SOURCE, strip=False, label="Template source")
    # The language of the copy being edited and previewed. Chosen from the page's list of
    # languages (a new page load), never in the form: a draft loaded in one language must not
    # be saved as another's copy.
    language = forms.CharField(widget=forms.HiddenInput, required=False)


# --- reads ----------------------------------------------------------------------------------


def shipped_source(name: str) -> str:
    return (TEMPLATE_DIR / name).read_text(encoding="utf-8")


def _copies(agency_id: int | None) -> tuple[dict, dict]:
    """({(name, language): the agency's copy}, {(name, language): the installation's copy});
    for an admin bound to no agency the first is the installation's and the second empty."""
    scope = Q(agency__isnull=True) | (Q(agency_id=agency_id) if agency_id else Q())
    own: dict[tuple[str, str], LetterTemplate] = {}
    installation: dict[tuple[str, str], LetterTemplate] = {}
    for copy in LetterTemplate.objects.select_related("updated_by").filter(scope):
        key = (copy.name, copy.language)
        (own if copy.agency_id == agency_id else installation)[key] = copy
    return own, installation


def template_rows(user=None) -> list[dict]:
    """Every editable template, grouped by letter kind, with the languages that have a copy."""
    own, installation = _copies(agencies.viewer_agency_id(user))
    rows = []
    for name in EDITABLE_TEMPLATES:
        kind = name.split(".", 1)[0]
        mine = [lang for lang in LANGUAGES if (name, lang) in own]
        rows.append({
            "name": name, "group": kind if kind in KINDS else "shared", "languages": mine,
            "installation_languages": [lang for lang in LANGUAGES
                                       if (name, lang) in installation and lang not in mine],
        })
    return rows


def language_rows(name: str, agency_id: int | None, current: str) -> list[dict]:
    """The editor's list: which languages have a copy (whose) and which follow the shipped
    text (with its translations)."""
    own, installation = _copies(agency_id)
    rows = []
    for code in LANGUAGES:
        copy, inherited = own.get((name, code)), installation.get((name, code))
        rows.append({"code": code, "name": LANGUAGE_NAMES.get(code, code),
                     "status": "own" if copy else "installation" if inherited else "shipped",
                     "copy": copy or inherited, "installation": inherited,
                     "current": code == current})
    return rows


def _edit_language(value: str | None) -> str:
    return value if value in LANGUAGES else ENGLISH


def _edit_url(name: str, language: str) -> str:
    return f"{reverse('template_edit', args=[name])}?language={language}"


def _require_template(name: str) -> None:
    if name not in EDITABLE_TEMPLATES:
        raise Http404("no such letter template")


def _sample_context(user) -> dict:
    """The sample letter, signed by the user's agency where its settings are filled in."""
    agency_id = agencies.viewer_agency_id(user)
    sample = dict(SAMPLE_CONTEXT)
    agency = Agency.objects.filter(pk=agency_id).first() if agency_id else None
    if agency is not None:
        sample["agency"] = {**SAMPLE_CONTEXT["agency"], "name": agency.name, **{
            key: getattr(agency, field) for key, field in (
                ("letterhead", "letterhead"), ("signature", "signature"),
                ("reply_to", "reply_to"), ("sender_email", "sender_email"),
                ("info_url", "info_url"), ("instructions_url", "instructions_url"),
            ) if getattr(agency, field)
        }}
    return sample


def describe_error(exc: Exception) -> str:
    """What went wrong in words a template author can act on (line numbers included)."""
    lineno = getattr(exc, "lineno", None)
    where = f" (line {lineno})" if lineno else ""
    if isinstance(exc, SecurityError):  # the sandbox, or its budget (TemplateTooCostly)
        return f"Not allowed in a letter template{where}: {exc}"
    return f"The template does not render{where}: {exc.__class__.__name__}: {exc}"


def render_preview(name: str, source: str, language: str, user) -> Rendered:
    """Render the sample letter with `source` in place of template `name`, in the sandbox.

    The other templates the user's agency writes with (its copies, else the installation's, in
    that language) are used too, so the preview is what a batch of theirs would send.
    Raises TemplateError (SecurityError included) and the errors a filter may raise.
    """
    _require_template(name)
    language = _edit_language(language)
    by_language = template_overrides(agencies.viewer_agency_id(user))
    by_language.setdefault(language, {})[name] = source
    kind = name.split(".", 1)[0]
    return LetterRenderer(by_language=by_language).render(
        kind if kind in KINDS else KINDS[0], _sample_context(user), language)


# What a template can make the renderer raise: the sandbox's SecurityError is a TemplateError;
# RecursionError is an include or macro that calls itself.
PREVIEW_ERRORS = (TemplateError, ValueError, TypeError, KeyError, LookupError, RecursionError,
                  ArithmeticError)


def _preview_or_error(name: str, source: str, language: str, user
                      ) -> tuple[Rendered | None, str]:
    try:
        return render_preview(name, source, language, user), ""
    except PREVIEW_ERRORS as exc:
        return None, describe_error(exc)


@require_http_methods(["GET", "POST"])
@require_perm(ADMIN_PERM)
def template_edit(request: HttpRequest, name: str) -> HttpResponse:
    """One template in one language (`?language=`): the user's agency's copy of it, or, for
    an admin bound to no agency, the installation's. Other languages keep their own text."""
    _require_template(name)
    agency_id = agencies.viewer_agency_id(request.user)
    data = request.POST if request.method == "POST" else request.GET
    language = _edit_language(data.get("language"))
    if request.method == "POST" and "revert" in request.POST:
        if revert_template(name=name, language=language, actor=request.user):
            messages.success(request, f"Your copy of {name} ({language}) is gone: the "
                                      "letters use the installation's copy or the shipped one.")
        else:
            messages.info(request, f"There was no copy of {name} ({language}) to revert.")
        return redirect(_edit_url(name, language))
    languages = language_rows(name, agency_id, language)
    here = next(row for row in languages if row["current"])
    override = here["copy"] if here["status"] == "own" else None
    inherited = here["installation"]
    initial = {"source": here["copy"].source if here["copy"] else shipped_source(name),
               "language": language}
    form = TemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        source = form.cleaned_data["source"]
        try:  # checks the template in the sandbox, stores it and writes the audit log
            save_template(name=name, source=source, actor=request.user, language=language)
        except PREVIEW_ERRORS as exc:
            form.add_error("source", describe_error(exc))
        else:
            messages.success(request, f"Template {name} saved. Language: "
                                      f"{LANGUAGE_NAMES.get(language, language)} only.")
            return redirect(_edit_url(name, language))
    source = form.data["source"] if form.is_bound and "source" in form.data else (
        initial["source"])
    preview, error = _preview_or_error(name, source, language, request.user)
    return render(request, "letters/template_edit.html", {
        "name": name,
        "form": form,
        "language": language,
        "language_name": LANGUAGE_NAMES.get(language, language),
        "languages": languages,
        "override": override,
        "inherited": inherited,
        "agency_bound": agency_id is not None,
        "preview": preview,
        "preview_error": error,
    }, status=400 if form.errors else 200)


@require_POST
@require_perm(ADMIN_PERM)
def template_preview(request: HttpRequest, name: str) -> JsonResponse:
    """The live preview: render a draft (never stored) and return its parts as JSON."""
    _require_template(name)
    source = request.POST.get("source", "")
    language = _edit_language(request.POST.get("language"))
    if len(source) > MAX_SOURCE:
        return JsonResponse({"ok": False, "error": "The template is too long."}, status=400)
    preview, error = _preview_or_error(name, source, language, request.user)
    if preview is None:
        response = JsonResponse({"ok": False, "error": error}, status=400)
    else:
        response = JsonResponse({"ok": True, "subject": preview.subject, "text": preview.text,
                                 "html": preview.html})
    response["Cache-Control"] = "no-store"
    return response
