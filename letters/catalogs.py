"""The compiled letter catalogs must be there: a letter never goes out in another language.

Django falls back to the English message ids, silently, when a language's compiled catalog
(`.mo`) is missing, say on a deployment that skipped `manage.py compile_translations`: the
letter would say `ja` and read English. So there are two guards:

- a system check (`letters.E001`–`E003`, run by `migrate`, `runserver`, `check --deploy`…):
  every letter language has a `.po` and a `.mo` that is not older than it;
- at render and send time, `require(language)`: the catalog this process actually loaded for
  the language translates a message every catalog translates, else MissingCatalog.
"""

from __future__ import annotations

import weakref
from pathlib import Path

from django.conf import settings
from django.core import checks
from django.utils import translation
from django.utils.translation import trans_real

from letters.languages import ENGLISH, LANGUAGES, babel_locale, normalize

# A message every non-English catalog translates (tests/letters/test_catalogs.py checks that):
# if the active catalog returns it untranslated, that catalog is not loaded.
SENTINEL = "Dear network administrator,"
FIX = "run manage.py compile_translations"


class MissingCatalog(ValueError):
    """The catalog for a letter's language is not loaded: nothing may be rendered or sent.

    A ValueError, so the template editor's and the sender's handling of unrenderable input
    reports it as a message rather than a crash."""


# Catalogs found loaded. Django keeps a language's catalog for the life of the process and
# makes a new one only when its caches are reset (LOCALE_PATHS changed, as tests do): a catalog
# checked once needs no second check, and a new one is checked anew. Asked once per letter
# rendered and sent, the check itself (an override of the active language) cost a batch ~4 %.
_LOADED: weakref.WeakSet = weakref.WeakSet()


def problem(language: str) -> str | None:
    """Why letters in `language` cannot be written right now, or None."""
    language = normalize(language) or language
    if language == ENGLISH:
        return None  # the message ids are the English text
    # Not the renderer's memoised gettext: this must ask the catalogs loaded now.
    catalog = trans_real.translation(language)
    if catalog in _LOADED:
        return None
    with translation.override(language):
        loaded = translation.gettext(SENTINEL) != SENTINEL
    if loaded:
        _LOADED.add(catalog)
        return None
    return f"catalog for {language} missing; {FIX} (then restart the web app and workers)"


def require(language: str) -> None:
    """Raise MissingCatalog unless the catalog for `language` is loaded."""
    found = problem(language)
    if found is not None:
        raise MissingCatalog(found)


def file_problems(locale_paths: list | None = None) -> list[checks.CheckMessage]:
    """A `.po` per letter language somewhere in LOCALE_PATHS, each compiled and up to date."""
    paths = [Path(p) for p in (settings.LOCALE_PATHS if locale_paths is None else locale_paths)]
    errors: list[checks.CheckMessage] = []
    for language in LANGUAGES:
        relative = Path(babel_locale(language)) / "LC_MESSAGES"
        sources = [po for po in (p / relative / "django.po" for p in paths) if po.exists()]
        if not sources:
            errors.append(checks.Error(
                f"no translation catalog for the letter language {language} "
                f"({relative / 'django.po'} in none of LOCALE_PATHS)",
                hint="letters in it would go out in English", id="letters.E003",
            ))
            continue
        for po in sources:
            mo = po.with_suffix(".mo")
            if not mo.exists():
                errors.append(checks.Error(
                    f"catalog for {language} missing: {mo} is not compiled",
                    hint=f"{FIX}; letters in {language} would go out in English",
                    id="letters.E001",
                ))
            elif mo.stat().st_mtime < po.stat().st_mtime:
                errors.append(checks.Error(
                    f"catalog for {language} out of date: {mo} is older than {po.name}",
                    hint=f"{FIX}; letters in {language} would use the old text",
                    id="letters.E002",
                ))
    return errors


def check_catalogs(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """System check (registered in letters.apps): see file_problems."""
    return file_problems()
