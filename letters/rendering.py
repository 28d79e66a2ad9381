"""Rendering letters: subject, plain text and HTML, in the recipient's language.

Templates are Jinja2 and may be edited by staff, so they run in an immutable sandbox: a
template can read its context but cannot reach attributes starting with `_`, call methods
that change data, or touch anything we did not hand it; and every render has a budget of
steps and text (letters.sandbox), so no template can hang a worker or exhaust its memory.
HTML parts are autoescaped.
Strings are gettext messages (`{% trans %}`) served by Django's translation machinery for
the active language, so the same `locale/<lang>/LC_MESSAGES/django.po` catalogs serve the
staff UI and the letters.

The context of a letter is JSON (it is stored on the Letter and travels through Celery):
dates are ISO 8601 strings that the `when` and `date` filters format for the locale (Babel).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel import dates as babel_dates
from django.utils import translation
from jinja2 import ChoiceLoader, DictLoader, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from letters import catalogs, sandbox, variants
from letters.languages import ENGLISH, LANGUAGES, babel_locale, normalize

TEMPLATE_DIR = Path(__file__).resolve().parent / "jinja"
KINDS = ("first_notice", "second_notice")
PARTS = ("subject.txt", "body.txt", "body.html")
# Every template a staff member may override (the partials too).
EDITABLE_TEMPLATES: tuple[str, ...] = (
    *(f"{kind}.{part}" for kind in KINDS for part in PARTS),
    "_findings.txt", "_findings.html", "_evidence.txt", "_evidence.html", "layout.html",
)
WRAP = 76
PROTOCOLS = {"http_proxy": "HTTP", "socks4": "SOCKS4", "socks5": "SOCKS5", "smtp_relay": "SMTP"}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str  # the whole e-mail page (layout.html around the sections)
    sections: str = ""  # the sections alone, each in its language: what a printed page holds


def _parse_when(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    else:
        moment = dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


# The language being rendered, set by LetterRenderer for the duration of one section (cheaper
# to read than Django's thread-and-task-local active language, asked for thousands of times).
_RENDERING: contextvars.ContextVar[str | None] = contextvars.ContextVar("letters_language",
                                                                       default=None)


def _language() -> str:
    return _RENDERING.get() or normalize(translation.get_language()) or ENGLISH


def _locale() -> str:
    return babel_locale(_language())


def format_when(value: Any) -> str:
    """`2026-11-20T14:02:00Z` → "20. November 2026, 14:02 UTC" in the active language."""
    if value in (None, ""):
        return ""
    return _format_when(value if isinstance(value, str) else str(value), _locale())


def format_day(value: Any) -> str:
    if value in (None, ""):
        return ""
    return _format_day(value if isinstance(value, str) else str(value), _locale())


# Letters in a batch share their probe and re-test dates: format each once per locale.
@functools.lru_cache(maxsize=4096)
def _format_when(value: str, locale: str) -> str:
    moment = _parse_when(value)
    if moment is None:
        return ""
    day = babel_dates.format_date(moment.date(), "long", locale=locale)
    clock = babel_dates.format_time(moment, "short", tzinfo=dt.UTC, locale=locale)
    glue = babel_dates.get_datetime_format("medium", locale=locale)
    return glue.replace("'", "").replace("{1}", day).replace("{0}", clock) + " UTC"


@functools.lru_cache(maxsize=1024)
def _format_day(value: str, locale: str) -> str:
    moment = _parse_when(value)
    if moment is None:
        return ""
    return babel_dates.format_date(moment.date(), "long", locale=locale)


# Django's catalogs for the language activated by translation.override(), memoised: a batch
# asks for the same few dozen messages in each language thousands of times.
@functools.lru_cache(maxsize=8192)
def _cached_gettext(language: str, message: str) -> str:
    with translation.override(language):
        return translation.gettext(message)


@functools.lru_cache(maxsize=1024)
def _cached_ngettext(language: str, singular: str, plural: str, n: int) -> str:
    with translation.override(language):
        return translation.ngettext(singular, plural, n)


def _variant_text(variant: str) -> list[str]:
    """`ev.variant|variant_text`: the sentences saying what a check's variant means, in the
    letter's language (the code itself, `plain` or `source_route`, means nothing to a reader)."""
    if isinstance(variant, str) and len(variant) <= _VARIANT_CACHE_CHARS:
        return list(_cached_variant_text(_language(), variant))
    return list(_uncached_variant_text(_language(), variant))


# A variant code is short; a long value (an edited template's own) is not kept in the cache.
_VARIANT_CACHE_CHARS = 200


def _uncached_variant_text(language: str, variant: str) -> tuple[str, ...]:
    with translation.override(language):
        return tuple(str(sentence) for sentence in variants.variant_sentences(variant))


# Every evidence line of every letter asks this: memoised like _cached_gettext, because
# translation.override costs more than the rest of the line's rendering.
_cached_variant_text = functools.lru_cache(maxsize=1024)(_uncached_variant_text)


def _gettext(message: str) -> str:
    return _cached_gettext(_language(), message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return _cached_ngettext(_language(), singular, plural, n)


def _link(url: str) -> Markup:
    return Markup('<a href="{0}">{0}</a>').format(url)  # format() escapes the URL


def _mailto(address: str) -> Markup:
    return Markup('<a href="mailto:{0}">{0}</a>').format(address)


_LIST_ITEM = re.compile(r"^(\s*)([-*] )?")
# Wide (CJK) characters: Hangul Jamo, CJK radicals to Yi, Hangul syllables, compatibility
# ideographs, vertical and full-width forms.
_WIDE = re.compile(
    "[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f"
    "\uff00-\uff60\uffe0-\uffe6]"
)


@functools.lru_cache(maxsize=8192)
def _wrap_line(line: str, width: int) -> tuple[str, ...]:
    # Chinese, Japanese and Korean text breaks anywhere but textwrap breaks only at spaces,
    # which would cut such lines at odd places: leave them long (quoted-printable copes).
    if len(line) <= width or _WIDE.search(line):
        return (line.rstrip(),)
    match = _LIST_ITEM.match(line)
    indent = match.group(1) + " " * len(match.group(2) or "")
    return tuple(textwrap.wrap(line, width, subsequent_indent=indent,
                               break_long_words=False, break_on_hyphens=False))


def wrap_text(text: str, width: int = WRAP) -> str:
    """Wrap long lines for plain-text mail, keeping list indentation; URLs stay whole.

    Cached per line: the paragraphs of a letter repeat across a batch in each language.
    """
    out: list[str] = []
    for line in text.splitlines():
        out.extend(_wrap_line(line, width))
    return "\n".join(out)


def _tidy(text: str) -> str:
    text = re.sub(r"\n{3,}", "\n\n", text.strip())
    return wrap_text(text) + "\n"


def _one_line(text: str) -> str:
    # Headers must be one line: a template (or a value in it) must not inject another header.
    return " ".join(text.split())


def build_environment(overrides: Mapping[str, str] | None = None) -> sandbox.BoundedSandbox:
    loaders = [FileSystemLoader(str(TEMPLATE_DIR))]
    if overrides:
        loaders.insert(0, DictLoader(dict(overrides)))
    env = sandbox.BoundedSandbox(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=StrictUndefined,
        auto_reload=False,
        cache_size=100,
    )
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(gettext=_gettext, ngettext=_ngettext, newstyle=True)
    env.filters["when"] = format_when
    env.filters["date"] = format_day
    env.filters["link"] = _link
    env.filters["mailto"] = _mailto
    env.filters["variant_text"] = _variant_text
    return env


def summarize_ips(ips: list[str], shown: int = 3) -> str:
    """The addresses for a subject line: the first few, then a count (no words to translate)."""
    head = ", ".join(ips[:shown])
    return f"{head} (+{len(ips) - shown})" if len(ips) > shown else head


# Staff-edited templates by language: {language: {template name: source}}.
ByLanguage = Mapping[str, Mapping[str, str]]


def resolve_overrides(rows: Iterable[tuple[int | None, str, str, str]]
                      ) -> dict[str, dict[str, str]]:
    """{language: {name: source}} from (agency_id, name, language, source) rows of one agency
    and of the installation (agency None): the agency's copy wins, else the installation's;
    a template neither has stays the shipped one."""
    resolved: dict[str, dict[str, str]] = {}
    for _agency, name, language, source in sorted(rows, key=lambda r: r[0] is not None):
        resolved.setdefault(language, {})[name] = source  # agency rows come last and win
    return resolved


class LetterRenderer:
    """Renders letters from a set of templates; build one per batch and reuse it.

    `overrides` replace shipped templates in every language (tests, the sandbox checks);
    `by_language` replaces them in one language only, on top: an edited `{% trans %}` text has
    no translation in the catalogs, so a copy edited in English must not serve Japanese.
    """

    def __init__(self, overrides: Mapping[str, str] | None = None, *,
                 by_language: ByLanguage | None = None) -> None:
        self._common = dict(overrides or {})
        self._by_language = {lang: dict(t) for lang, t in (by_language or {}).items() if t}
        self.env = build_environment(self._common)
        self._envs: dict[str, sandbox.BoundedSandbox] = {}

    def env_for(self, language: str) -> sandbox.BoundedSandbox:
        """The environment for one language: shared by every language without a copy."""
        own = self._by_language.get(language)
        if not own:
            return self.env
        env = self._envs.get(language)
        if env is None:
            env = self._envs[language] = build_environment({**self._common, **own})
        return env

    def _section(self, kind: str, context: Mapping[str, Any], language: str, *,
                 bilingual_note: bool) -> tuple[str, str, str]:
        ctx = {**context, "bilingual_note": bilingual_note,
               "ips": summarize_ips([h["ip"] for h in context["hosts"]])}
        env = self.env_for(language)
        token = _RENDERING.set(language)
        try:
            subject = env.get_template(f"{kind}.subject.txt").render(ctx)
            text = env.get_template(f"{kind}.body.txt").render(ctx)
            html = env.get_template(f"{kind}.body.html").render(ctx)
        finally:
            _RENDERING.reset(token)
        return _one_line(subject), _tidy(text), html

    def render(self, kind: str, context: Mapping[str, Any], language: str,
               *, bilingual: bool = False) -> Rendered:
        if kind not in KINDS:
            raise ValueError(f"unknown letter kind {kind!r}")
        language = normalize(language) or ENGLISH
        # Without its catalog the letter would read English while saying `language`.
        catalogs.require(language)
        context = prepare_context(context)
        with sandbox.budget(len(context["hosts"])):
            return self._render(kind, context, language, bilingual=bilingual)

    def _render(self, kind: str, context: dict[str, Any], language: str, *,
                bilingual: bool) -> Rendered:
        subject, text, html = self._section(
            kind, context, language, bilingual_note=bilingual and language != ENGLISH
        )
        # Output of an autoescaping template: already safe HTML, not to be escaped twice.
        sections = [{"lang": language, "html": Markup(html)}]  # noqa: S704
        if bilingual and language != ENGLISH:
            en_subject, en_text, en_html = self._section(
                kind, context, ENGLISH, bilingual_note=False
            )
            subject = f"{subject} / {en_subject}"
            text = f"{text}\n{'-' * 40}\n\n{en_text}"
            sections.append({"lang": ENGLISH, "html": Markup(en_html)})  # noqa: S704
        page = self.env_for(language).get_template("layout.html").render(subject=subject,
                                                                          sections=sections)
        # Outside the staff-editable layout: the printed letter has its own (letters.postal).
        body = "<hr>".join(f'<div lang="{s["lang"]}">{s["html"]}</div>' for s in sections)
        return Rendered(subject=subject, text=text, html=page, sections=body)


def prepare_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """Fill derived values (proxy protocol names) so templates need no logic for them."""
    hosts = []
    for host in context["hosts"]:
        evidence = []
        for ev in host.get("evidence", []):
            item = {"sender": "", "recipient": "", "target": "", "variant": "", **ev}
            item.setdefault("protocol", PROTOCOLS.get(item.get("check", ""), ""))
            evidence.append(item)
        hosts.append({**host, "evidence": evidence})
    ctx = {"retest_after": None, "first_notice_at": None, "recipient_url": None, **context,
           "hosts": hosts}
    return ctx


SAMPLE_CONTEXT: dict[str, Any] = {
    "agency": {
        "name": "Example Agency",
        "letterhead": "Example Agency\n1 Example Street",
        "signature": "The Secure Your Server team",
        "reply_to": "secureyourserver@agency.example",
        "info_url": "https://agency.example/secureyourserver",
        "instructions_url": "https://agency.example/secureyourserver/howto",
    },
    "hosts": [
        {"ip": "192.0.2.25", "evidence": [
            {"check": "smtp_relay", "port": 25, "when": "2026-11-20T14:02:00+00:00",
             "sender": "outside@canary.example", "recipient": "outside@canary.example",
             "variant": "plain"},
        ]},
        {"ip": "192.0.2.80", "evidence": [
            {"check": "http_proxy", "port": 8080, "when": "2026-11-20T14:05:00+00:00",
             "target": "canary.example:25", "variant": "CONNECT"},
        ]},
    ],
    "retest_after": "2026-12-20",
    "first_notice_at": "2026-11-21T09:00:00+00:00",
    "recipient_url": "https://agency.example/r/sample-token/",
}


def check_template(name: str, source: str, language: str = ENGLISH) -> None:
    """Raise (jinja2.TemplateError or a sandbox SecurityError) if an edited template is broken.

    It is compiled and rendered, as the copy of `language`, against a sample letter that is
    bilingual (that language, or Japanese, then English), so a staff edit that references a
    missing variable fails here, not in a batch.
    """
    if name not in EDITABLE_TEMPLATES:
        raise ValueError(f"{name!r} is not a letter template")
    if language not in LANGUAGES:
        raise ValueError(f"{language!r} is not a letter language")
    renderer = LetterRenderer(by_language={language: {name: source}})
    for kind in KINDS:
        renderer.render(kind, SAMPLE_CONTEXT, language if language != ENGLISH else "ja",
                        bilingual=True)
