"""The letter languages and how a contact's language tag maps onto them.

Plain Python, no Django. Codes are Django's language codes (`pt-br`, `zh-hans`); the locale
directories are Django's locale names (`pt_BR`, `zh_Hans`), and Babel gets the same names.
"""

from __future__ import annotations

# The 21 languages of the original operation's letter, in its order.
LANGUAGES: tuple[str, ...] = (
    "en", "es", "fr", "pt-br", "de", "it", "sq", "bg", "da", "fi", "sv",
    "hu", "ja", "lt", "nb", "ro", "sr", "zh-hans", "zh-hant", "ko", "ms",
)
ENGLISH = "en"

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English", "es": "Español", "fr": "Français", "pt-br": "Português (Brasil)",
    "de": "Deutsch", "it": "Italiano", "sq": "Shqip", "bg": "Български", "da": "Dansk",
    "fi": "Suomi", "sv": "Svenska", "hu": "Magyar", "ja": "日本語", "lt": "Lietuvių",
    "nb": "Norsk bokmål", "ro": "Română", "sr": "Српски", "zh-hans": "简体中文",
    "zh-hant": "繁體中文", "ko": "한국어", "ms": "Bahasa Melayu",
}

# Tags that contacts and RDAP records use for the same languages.
_ALIASES: dict[str, str] = {
    "pt": "pt-br", "pt-pt": "pt-br",
    "zh": "zh-hans", "zh-cn": "zh-hans", "zh-sg": "zh-hans", "zh-my": "zh-hans",
    "zh-tw": "zh-hant", "zh-hk": "zh-hant", "zh-mo": "zh-hant",
    "no": "nb", "nn": "nb", "nb-no": "nb", "no-no": "nb",
    "sr-latn": "sr", "sr-cyrl": "sr", "sr-rs": "sr",
    "ms-my": "ms", "ms-sg": "ms", "ms-bn": "ms", "in": "ms",
}


def normalize(tag: str | None) -> str | None:
    """A letter language for `tag` (`pt_BR`, `zh-TW`, `de-AT`, `NO`), or None if we have none."""
    if not tag:
        return None
    code = tag.strip().replace("_", "-").lower()
    if code in LANGUAGES:
        return code
    if code in _ALIASES:
        return _ALIASES[code]
    # Script subtags matter for Chinese only; any other region or script falls back.
    if code.startswith("zh-"):
        return "zh-hant" if "hant" in code else "zh-hans"
    base = code.split("-", 1)[0]
    if base in LANGUAGES:
        return base
    return _ALIASES.get(base)


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
    lang, _, rest = code.partition("-")
    if not rest:
        return lang
    return f"{lang}_{rest.title() if len(rest) > 2 else rest.upper()}"
