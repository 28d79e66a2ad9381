"""Which of the letter languages to write in, from the contact's country.

The letters exist in a fixed set of languages; a country maps to the one its network operators
most likely read. Where a country has several official languages we pick the one operators
there use for business mail among those we have (Belgium and Luxembourg → French, Switzerland
→ German), and English wherever we have no better guess. Staff override per contact.
"""

from __future__ import annotations

import pycountry

from campaign import languages

DEFAULT_LANGUAGE = languages.ENGLISH
LETTER_LANGUAGES: tuple[str, ...] = languages.LANGUAGES  # BCP 47, as contacts store them

_BY_LANGUAGE: dict[str, tuple[str, ...]] = {
    "es": ("ES", "MX", "AR", "CO", "CL", "PE", "VE", "EC", "GT", "CU", "BO", "DO", "HN", "PY",
           "SV", "NI", "CR", "PA", "UY", "GQ", "PR"),
    "fr": ("FR", "BE", "LU", "MC", "SN", "CI", "ML", "BF", "NE", "TG", "BJ", "GN", "CM", "CD",
           "CG", "GA", "MG", "HT", "RE", "GP", "MQ", "GF", "YT", "NC", "PF", "PM", "WF", "BL",
           "MF", "DJ", "KM", "TD", "CF", "BI", "MA", "DZ", "TN", "MR"),
    "pt-BR": ("BR", "PT", "AO", "MZ", "CV", "GW", "ST", "TL"),
    "de": ("DE", "AT", "CH", "LI"),
    "it": ("IT", "SM", "VA"),
    "sq": ("AL", "XK"),
    "bg": ("BG",),
    "da": ("DK", "GL", "FO"),
    "fi": ("FI",),
    "sv": ("SE", "AX"),
    "hu": ("HU",),
    "ja": ("JP",),
    "lt": ("LT",),
    "nb": ("NO", "SJ", "BV"),
    "ro": ("RO", "MD"),
    "sr": ("RS", "ME", "BA"),
    "zh-Hans": ("CN",),
    "zh-Hant": ("TW", "HK", "MO"),
    "ko": ("KR", "KP"),
    "ms": ("MY", "BN"),
}

# XK (Kosovo) is a user-assigned code the registries use; ISO 3166 (and pycountry) lack it.
_EXTRA_CODES = frozenset({"XK"})

COUNTRY_LANGUAGE: dict[str, str] = {
    country: language for language, countries in _BY_LANGUAGE.items() for country in countries
}


def is_country(code: str) -> bool:
    code = (code or "").strip().upper()
    if code in _EXTRA_CODES:
        return True
    return len(code) == 2 and pycountry.countries.get(alpha_2=code) is not None


def language_for_country(code: str | None) -> str:
    """The letter language for an ISO 3166-1 alpha-2 code; English when unknown."""
    code = (code or "").strip().upper()
    if not is_country(code):
        return DEFAULT_LANGUAGE
    return COUNTRY_LANGUAGE.get(code, DEFAULT_LANGUAGE)


def normalise_language(text: str) -> str:
    """Match a staff-typed language tag to ours (`pt-br` → `pt-BR`); ValueError if none."""
    found = languages.exact(text)
    if found:
        return found
    raise ValueError(
        f"unknown letter language {text!r} (choose one of {', '.join(LETTER_LANGUAGES)})"
    )
