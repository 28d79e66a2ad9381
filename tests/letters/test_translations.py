"""Every letter string in every language, with its placeholders; rendering per locale."""

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from jinja2.exceptions import SecurityError
from jinja2.ext import babel_extract

from letters.languages import LANGUAGES, babel_locale, normalize
from letters.rendering import (
    EDITABLE_TEMPLATES,
    SAMPLE_CONTEXT,
    TEMPLATE_DIR,
    LetterRenderer,
    check_template,
)

LOCALE = Path(__file__).resolve().parents[2] / "locale"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def template_messages() -> set[str]:
    found = set()
    for path in TEMPLATE_DIR.iterdir():
        with path.open("rb") as handle:
            for _, _, message, _ in babel_extract(
                handle, ("gettext",), [],
                {"extensions": "jinja2.ext.i18n", "trimmed": "true"},
            ):
                found.add(message)
    return found


def test_the_templates_have_the_letter_messages():
    messages = template_messages()
    assert len(messages) >= 20
    assert any("Operation Secure Your Server" in m for m in messages)


@pytest.mark.parametrize("code", LANGUAGES)
def test_every_language_has_every_message_with_the_same_placeholders(code):
    path = LOCALE / babel_locale(code) / "LC_MESSAGES" / "django.po"
    assert path.exists(), f"no catalog for {code}"
    with path.open("rb") as handle:
        catalog = read_po(handle)
    for msgid in template_messages():
        message = catalog.get(msgid)
        assert message is not None, f"{code} lacks {msgid!r}"
        assert message.string, f"{code} has an empty translation of {msgid!r}"
        assert not message.fuzzy, f"{code}: fuzzy translation of {msgid!r}"
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(msgid)), (
            f"{code}: placeholders differ in {message.string!r}"
        )
        if code != "en":
            assert message.string != msgid or len(msgid) < 25, f"{code}: untranslated {msgid!r}"


ENGLISH_SENTENCES = ("Dear network administrator", "Open relays and open proxies are servers",
                     "Yours sincerely")


@pytest.mark.parametrize("code", [c for c in LANGUAGES if c != "en"])
def test_each_language_renders_without_english_left_over(code):
    rendered = LetterRenderer().render("first_notice", SAMPLE_CONTEXT, code)
    for sentence in ENGLISH_SENTENCES:
        assert sentence not in rendered.text
        assert sentence not in rendered.html
    # The findings, the links and the reply address survive translation.
    for needle in ("192.0.2.25", "192.0.2.80", "https://agency.example/secureyourserver/howto",
                   "secureyourserver@agency.example", "8080"):
        assert needle in rendered.text
    assert f'lang="{code}"' in rendered.html


def test_dates_are_formatted_for_the_locale():
    ja = LetterRenderer().render("first_notice", SAMPLE_CONTEXT, "ja")
    de = LetterRenderer().render("first_notice", SAMPLE_CONTEXT, "de")
    en = LetterRenderer().render("first_notice", SAMPLE_CONTEXT, "en")
    assert "2026年11月20日 14:02 UTC" in ja.text
    assert "20. November 2026, 14:02 UTC" in de.text
    flat = " ".join(en.text.split())
    assert re.search(r"Port 25, November 20, 2026, 2:02\sPM UTC", flat)
    assert "20. Dezember 2026" in de.text  # the re-test date


def test_a_bilingual_letter_is_local_then_english():
    rendered = LetterRenderer().render("first_notice", SAMPLE_CONTEXT, "bg", bilingual=True)
    local, english = rendered.text.split("-" * 40)
    assert "Уважаеми мрежови администратор" in local
    assert "Dear network administrator" in english
    assert "По-долу ще намерите английски вариант" in local
    assert " / Example Agency: open mail relay" in rendered.subject
    assert rendered.html.index('lang="bg"') < rendered.html.index('<div lang="en"')


def test_english_is_never_doubled_in_a_bilingual_campaign():
    rendered = LetterRenderer().render("first_notice", SAMPLE_CONTEXT, "en", bilingual=True)
    assert rendered.text.count("Dear network administrator") == 1


def test_the_second_notice_says_the_server_is_still_open():
    rendered = LetterRenderer().render("second_notice", SAMPLE_CONTEXT, "en")
    assert rendered.subject.startswith("Second notice from Example Agency")
    assert "still open" in rendered.text
    assert "On November 21, 2026, Example Agency wrote to you" in rendered.text


def test_the_evidence_names_the_check_port_time_and_variant():
    text = LetterRenderer().render("first_notice", SAMPLE_CONTEXT, "en").text
    flat = " ".join(text.split())
    assert ("Port 25, November 20, 2026" in flat and
            "accepted mail from outside@canary.example to outside@canary.example" in flat)
    assert "forwarded our connection to canary.example:25 (open HTTP proxy)" in flat
    # The variant in words, never its code (`CONNECT`, `plain`): a reader cannot know it.
    assert "It opened a tunnel to another server for us (CONNECT)." in flat
    assert "It passed on a message from an outside sender to an outside address." in flat
    assert "Test variant" not in flat and "plain" not in flat


@pytest.mark.parametrize("code", ["de", "ja"])
def test_the_letter_says_what_the_variant_means_in_its_language(code):
    from django.utils import translation

    with translation.override(code):
        expected = str(translation.gettext(
            "It passed on a message from an outside sender to an outside address."))
    assert expected != "It passed on a message from an outside sender to an outside address."
    rendered = LetterRenderer().render("first_notice", SAMPLE_CONTEXT, code)
    for part in (rendered.text, rendered.html):
        flat = " ".join(part.split())  # the text body is wrapped at 72 columns
        assert expected in flat
        assert "plain" not in flat


def test_html_parts_escape_what_the_context_carries():
    context = {**SAMPLE_CONTEXT,
               "agency": {**SAMPLE_CONTEXT["agency"], "name": "<script>alert(1)</script>"}}
    rendered = LetterRenderer().render("first_notice", context, "fr")
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text  # plain text is not HTML


def test_subjects_are_one_line_even_if_a_value_has_a_newline():
    context = {**SAMPLE_CONTEXT, "agency": {**SAMPLE_CONTEXT["agency"],
                                            "name": "Agency\r\nBcc: victim@example.org"}}
    subject = LetterRenderer().render("first_notice", context, "en").subject
    assert "\n" not in subject and "\r" not in subject


def test_a_staff_template_cannot_reach_python_internals():
    evil = "{{ hosts.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(SecurityError):
        check_template("first_notice.subject.txt", evil)
    mutate = "{{ hosts.append(1) }}"
    with pytest.raises(SecurityError):
        check_template("first_notice.subject.txt", mutate)


def test_a_staff_template_override_is_used():
    renderer = LetterRenderer({"first_notice.subject.txt": "Notice about {{ ips }}"})
    assert renderer.render("first_notice", SAMPLE_CONTEXT, "en").subject == (
        "Notice about 192.0.2.25, 192.0.2.80"
    )
    assert "first_notice.body.html" in EDITABLE_TEMPLATES


def test_contact_language_tags_map_to_letter_languages():
    assert normalize("pt_BR") == "pt-br"
    assert normalize("zh-TW") == "zh-hant"
    assert normalize("zh-CN") == "zh-hans"
    assert normalize("NO") == "nb"
    assert normalize("de-AT") == "de"
    assert normalize("xx") is None
    assert babel_locale("zh-hant") == "zh_Hant"


def recipient_page_messages() -> set[str]:
    """The messages of the recipient's pages, extracted as Django's makemessages does."""
    import io

    from babel.messages.extract import extract_python
    from django.utils.translation.template import templatize

    found = set()
    for path in (Path(__file__).resolve().parents[2] / "templates" / "recipient").glob("*.html"):
        code = templatize(path.read_text(), origin=str(path))
        for _, _, message, _ in extract_python(io.BytesIO(code.encode()), ("gettext", "_"),
                                               [], {}):
            found.add(message)
    # And the sentences the page takes from Python (what each test variant means).
    source = Path(__file__).resolve().parents[2] / "letters" / "variants.py"
    with source.open("rb") as handle:
        for _, _, message, _ in extract_python(handle, ("_",), [], {}):
            found.add(message)
    return found


@pytest.mark.parametrize("code", LANGUAGES)
def test_every_language_translates_the_recipient_pages(code):
    messages = recipient_page_messages()
    assert {"How we write to you", "Your time zone", "Test my server again now",
            "For your mail servers",
            "It opened a tunnel to another server for us (CONNECT)."} <= messages
    with (LOCALE / babel_locale(code) / "LC_MESSAGES" / "django.po").open("rb") as handle:
        catalog = read_po(handle)
    for msgid in messages:
        message = catalog.get(msgid)
        assert message is not None and message.string, f"{code} lacks {msgid!r}"
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(msgid))
