import pycountry
import pytest

from probes.contacts import languages


def test_every_letter_language_is_reachable_from_some_country():
    reachable = set(languages.COUNTRY_LANGUAGE.values()) | {languages.DEFAULT_LANGUAGE}
    assert reachable == set(languages.LETTER_LANGUAGES)
    assert len(languages.LETTER_LANGUAGES) == 21


def test_every_mapped_country_is_a_real_iso_code_except_kosovo():
    unknown = {c for c in languages.COUNTRY_LANGUAGE if pycountry.countries.get(alpha_2=c) is None}
    assert unknown == {"XK"}


@pytest.mark.parametrize(
    ("country", "language"),
    [
        ("CO", "es"), ("ar", "es"), ("FR", "fr"), ("BR", "pt-BR"), ("DE", "de"), ("AT", "de"),
        ("IT", "it"), ("AL", "sq"), ("BG", "bg"), ("DK", "da"), ("FI", "fi"), ("SE", "sv"),
        ("HU", "hu"), ("JP", "ja"), ("LT", "lt"), ("NO", "nb"), ("RO", "ro"), ("RS", "sr"),
        ("CN", "zh-Hans"), ("TW", "zh-Hant"), ("HK", "zh-Hant"), ("KR", "ko"), ("MY", "ms"),
        ("US", "en"), ("NL", "en"), ("KE", "en"), ("AU", "en"),
    ],
)
def test_a_country_maps_to_its_letter_language(country, language):
    assert languages.language_for_country(country) == language


@pytest.mark.parametrize("junk", ["", None, "ZZ", "EU", "QQ", "USA", "1", "é"])
def test_unknown_or_invalid_countries_fall_back_to_english(junk):
    assert languages.language_for_country(junk) == "en"


def test_staff_typed_languages_are_normalised_or_refused():
    assert languages.normalise_language("pt-br") == "pt-BR"
    assert languages.normalise_language("zh_hant") == "zh-Hant"
    with pytest.raises(ValueError, match="unknown letter language"):
        languages.normalise_language("klingon")


def test_one_list_of_languages_in_one_spelling_with_one_mapping_to_django_codes():
    from campaign import languages as core
    from letters import languages as letter_languages

    assert len(core.LANGUAGES) == len(set(core.LANGUAGES)) == 21
    assert all(core.bcp47(tag) == tag for tag in core.LANGUAGES)  # BCP 47 as stored
    assert languages.LETTER_LANGUAGES is core.LANGUAGES
    assert letter_languages.LANGUAGES == tuple(tag.lower() for tag in core.LANGUAGES)
    assert set(letter_languages.LANGUAGE_NAMES) == set(letter_languages.LANGUAGES)
    for tag in core.LANGUAGES:
        code = core.django_code(tag)
        # Each spelling maps back to the same language, whichever way round.
        assert core.bcp47(code) == tag and core.exact(code) == tag
        assert letter_languages.normalize(tag) == code
        assert languages.normalise_language(code) == tag
    assert core.babel_locale("pt-br") == core.babel_locale("pt-BR") == "pt_BR"
    assert core.babel_locale("zh-hant") == "zh_Hant" and core.babel_locale("de") == "de"
    assert (core.closest("zh-TW"), core.closest("pt_PT"), core.closest("de-AT")) == (
        "zh-Hant", "pt-BR", "de")
    assert core.closest("tlh") is None and core.exact("pt") is None
