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
