"""The letter languages as the letters store them: Django's codes (`pt-br`, `zh-hans`).

The list itself, the names and the BCP 47 spelling live once in campaign.languages; this is
its Django-code view for templates, catalogs and stored letters.
"""

from __future__ import annotations

from campaign import languages as _core
from campaign.languages import ENGLISH, babel_locale, bcp47

__all__ = ["LANGUAGES", "LANGUAGE_NAMES", "ENGLISH", "normalize", "bcp47", "babel_locale"]

LANGUAGES: tuple[str, ...] = tuple(_core.django_code(tag) for tag in _core.LANGUAGES)
LANGUAGE_NAMES: dict[str, str] = {_core.django_code(tag): name
                                  for tag, name in _core.NAMES.items()}


def normalize(tag: str | None) -> str | None:
    """A letter language's Django code for `tag` (`pt_BR`, `zh-TW`, `de-AT`, `NO`), or None."""
    found = _core.closest(tag)
    return _core.django_code(found) if found else None
