"""Django's `{# … #}` comments end at the line's end: one spread over two lines is printed on
the page as text (a probe run's page once showed its own developer note). Multi-line notes
in Django templates go in {% comment %}. (Letter templates are Jinja, where it is fine.)"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def unclosed_comments(text: str) -> list[int]:
    """Numbers of the lines that open a `{#` comment they do not close."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        rest = line
        while "{#" in rest:
            rest = rest.split("{#", 1)[1]
            if "#}" not in rest:
                found.append(number)
                break
            rest = rest.split("#}", 1)[1]
    return found


def test_no_django_template_has_a_comment_spread_over_lines():
    broken = [f"{path.relative_to(REPO)}:{number}"
              for path in sorted((REPO / "templates").rglob("*.html"))
              for number in unclosed_comments(path.read_text())]
    assert broken == []


def test_the_check_finds_a_comment_spread_over_lines():
    text = "{# one line #}<p>ok</p>\n<p>{# fine #} {# a note that\n goes on #}</p>\n"
    assert unclosed_comments(text) == [2]
