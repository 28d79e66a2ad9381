"""The 21 letter languages, once: BCP 47 tags, their own names, and the one mapping to
Django's language codes.

The original operation's letter went out in these 21 languages (in its order). People, the
command line, JSON and registries see BCP 47 tags (`pt-BR`, `zh-Hans`); Django's translation
machinery and the letters' stored language use Django's codes, which are the same tags in
lower case (`pt-br`, `zh-hans`); locale directories and Babel use locale names (`pt_BR`,
`zh_Hans`). Plain Python, no Django: every layer may import it.
"""

from __future__ import annotations

LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "pt-BR", "de", "it", "sq", "bg", "da", "fi", "sv",
    "hu", "ja", "lt", "nb", "ro", "sr", "zh-Hans", "zh-Hant", "ko", "ms",
)
ENGLISH = "en"

NAMES: dict[str, str] = {
    "en": "English", "es": "Español", "fr": "Français", "pt-BR": "Português (Brasil)",
    "de": "Deutsch", "it": "Italiano", "sq": "Shqip", "bg": "Български", "da": "Dansk",
    "fi": "Suomi", "sv": "Svenska", "hu": "Magyar", "ja": "日本語", "lt": "Lietuvių",
    "nb": "Norsk bokmål", "ro": "Română", "sr": "Српски", "zh-Hans": "简体中文",
    "zh-Hant": "繁體中文", "ko": "한국어", "ms": "Bahasa Melayu",
}

# Tags that contacts, RDAP records and people use for the same languages (lower case).
_ALIASES: dict[str, str] = {
    "pt": "pt-BR", "pt-pt": "pt-BR",
    "zh": "zh-Hans", "zh-cn": "zh-Hans", "zh-sg": "zh-Hans", "zh-my": "zh-Hans",
    "zh-tw": "zh-Hant", "zh-hk": "zh-Hant", "zh-mo": "zh-Hant",
    "no": "nb", "nn": "nb", "nb-no": "nb", "no-no": "nb",
    "sr-latn": "sr", "sr-cyrl": "sr", "sr-rs": "sr",
    "ms-my": "ms", "ms-sg": "ms", "ms-bn": "ms", "in": "ms",
}
_BY_LOWER = {tag.lower(): tag for tag in LANGUAGES}


def django_code(tag: str) -> str:
    """Django's code for a letter language (`pt-BR` → `pt-br`)."""
    return tag.lower()


def exact(text: str | None) -> str | None:
    """The letter language `text` names exactly, in any casing or `_` spelling, else None."""
    return _BY_LOWER.get((text or "").strip().replace("_", "-").lower())


def closest(tag: str | None) -> str | None:
    """The letter language for any tag (`pt_BR`, `zh-TW`, `de-AT`, `NO`), or None if we have
    none: a region or script falls back to the base language (scripts matter for Chinese)."""
    if not tag:
        return None
    found = exact(tag)
    if found:
        return found
    code = tag.strip().replace("_", "-").lower()
    if code in _ALIASES:
        return _ALIASES[code]
    if code.startswith("zh-"):
        return "zh-Hant" if "hant" in code else "zh-Hans"
    base = code.split("-", 1)[0]
    return _BY_LOWER.get(base) or _ALIASES.get(base)


def bcp47(code: str) -> str:
    """How a language code is shown to people: BCP 47 casing (`pt-br` → `pt-BR`,
    `zh-hans` → `zh-Hans`), whichever spelling (Django's, a registry's) it was stored in."""
    lang, *subtags = (code or "").strip().replace("_", "-").split("-")
    shown = [lang.lower()]
    for sub in subtags:
        shown.append(sub.upper() if len(sub) == 2 else sub.title() if len(sub) == 4
                     else sub.lower())
    return "-".join(shown)


def babel_locale(code: str) -> str:
    """`pt-br` → `pt_BR`, `zh-hans` → `zh_Hans` (also Django's locale directory name)."""
    lang, _, rest = bcp47(code).partition("-")
    return f"{lang}_{rest}" if rest else lang
