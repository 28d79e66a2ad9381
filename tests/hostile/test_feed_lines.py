"""Malicious feed lines: lookalike digits and dots, invisible and bidi characters, NULs, huge
lines. Each is refused with a reason that names the trick, shown so staff see what the line
really holds, and the good lines around it are all imported (nothing lost, nothing merged).

tests/test_parsers.py proves every line is accounted for whatever it holds; this file proves
*how* the tricks are refused.
"""

from __future__ import annotations

import io

import pytest
from django.urls import reverse

from campaign.addresses import AddressPolicy
from campaign.feeds.lines import numbered_lines
from campaign.feeds.parsers import Entry, Issue, parse
from campaign.imports import create_import, run_import
from campaign.models import FeedImport, Host, ImportLineIssue
from tests.conftest import make_user

# (line, the character the message must name, how the content must show it)
TRICKS = [
    ("\uff18.\uff18.\uff18.\uff18", "U+FF18 FULLWIDTH DIGIT EIGHT", "\uff18.\uff18"),
    ("\u0668.\u0668.\u0668.\u0668", "U+0668 ARABIC-INDIC DIGIT EIGHT", "\u0668"),
    ("\U0001d7d6.8.8.8", "U+1D7D6 MATHEMATICAL BOLD DIGIT EIGHT", "\U0001d7d6"),
    ("8\u30028\u30028\u30028", "U+3002 IDEOGRAPHIC FULL STOP", "8\u30028"),
    ("8\uff0e8\uff0e8\uff0e8", "U+FF0E FULLWIDTH FULL STOP", "8\uff0e8"),
    ("8\u00b78\u00b78\u00b78", "U+00B7 MIDDLE DOT", "8\u00b78"),
    ("8.8.8.8\u200b", "U+200B ZERO WIDTH SPACE", "8.8.8.8\\u200b"),
    ("8.8\u200d.8.8", "U+200D ZERO WIDTH JOINER", "8.8\\u200d.8.8"),
    ("\u2060" + "8.8.8.8", "U+2060 WORD JOINER", "\\u20608.8.8.8"),
    ("\u202e8.8.8.8", "U+202E RIGHT-TO-LEFT OVERRIDE", "\\u202e8.8.8.8"),
    ("8.8.8.8\u202d", "U+202D LEFT-TO-RIGHT OVERRIDE", "8.8.8.8\\u202d"),
    ("\u20678.8.8.8\u2069", "U+2067 RIGHT-TO-LEFT ISOLATE", "\\u2067"),
    ("\ufeff8.8.8.8", "U+FEFF ZERO WIDTH NO-BREAK SPACE", "\\ufeff8.8.8.8"),
]
FORMATS = ("ip", "netset", "drop")


def run(text: str, fmt: str) -> list[Entry | Issue]:
    return list(parse(numbered_lines(io.BytesIO(text.encode())), fmt, AddressPolicy()))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("line", "named", "shown"), TRICKS)
def test_a_lookalike_or_invisible_character_is_refused_and_named(fmt, line, named, shown):
    items = run(f"9.9.9.9\n{line}\n1.0.0.1\n", fmt)
    assert [(i.line_no, i.ip) for i in items if isinstance(i, Entry)] == [
        (1, "9.9.9.9"), (3, "1.0.0.1")]
    (issue,) = [i for i in items if isinstance(i, Issue)]
    assert (issue.line_no, issue.reason) == (2, "invalid")
    assert named in issue.message and "not plain ASCII" in issue.message
    assert shown in issue.content
    # Nothing invisible or direction-changing reaches the rejection report.
    assert not any(ch in issue.content for ch in "\u200b\u200d\u2060\u202d\u202e\u2067\ufeff")


@pytest.mark.parametrize(("line", "named", "shown"), TRICKS)
def test_a_proxy_line_with_a_trick_is_refused_and_named(line, named, shown):
    items = run(f"9.9.9.9:8080\n{line}:8080\n", "ipport")
    (issue,) = [i for i in items if isinstance(i, Issue)]
    assert issue.reason == "invalid" and named in issue.message and shown in issue.content


def test_lookalike_port_digits_are_named_too():
    (issue,) = run("9.9.9.9:\uff18\uff10\n", "ipport")
    assert issue.reason == "bad_port" and "U+FF18 FULLWIDTH DIGIT EIGHT" in issue.message


def test_a_csv_ip_column_with_a_trick_is_named():
    items = run('"ip","port"\n"8.8.8.8\u200b","25"\n"9.9.9.9","25"\n', "csv")
    issue = next(i for i in items if isinstance(i, Issue))
    assert issue.reason == "invalid" and "U+200B ZERO WIDTH SPACE" in issue.message
    assert [i.ip for i in items if isinstance(i, Entry)] == ["9.9.9.9"]


@pytest.mark.django_db
def test_an_import_of_hostile_lines_keeps_every_good_line_and_reports_every_bad_one(
    campaign, tmp_path, client
):
    good = ["9.9.9.9", "1.0.0.1", "149.112.112.112", "208.67.222.222"]
    hostile = [line for line, _named, _shown in TRICKS] + [
        "8.8.8.8\x00", "\x00" * 50, "8" * 9000, "A" * 5_000_000,  # NULs, long and huge lines
        "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>',
    ]
    lines = []
    for i, line in enumerate(hostile):  # good lines between the bad ones
        lines += [good[i % len(good)] if i < len(good) else f"# comment {i}", line]
    path = tmp_path / "hostile.txt"
    path.write_bytes("\n".join(lines).encode() + b"\n")
    done = run_import(create_import(campaign=campaign, source=str(path), fmt="ip",
                                        kind="relay").pk)
    assert done.status == FeedImport.DONE
    assert done.lines == len(lines)
    assert set(Host.objects.filter(campaign=campaign).values_list("ip", flat=True)) == set(good)
    issues = {i.line_no: i for i in ImportLineIssue.objects.filter(feed_import=done)}
    assert set(issues) == {2 * n + 2 for n in range(len(hostile))}  # every bad line, once
    assert done.rejected == len(hostile)
    for issue in issues.values():
        assert issue.rejected and issue.reason in ("invalid", "bad_bytes", "too_long")
        assert issue.message and len(issue.content) <= 200 and "\x00" not in issue.content

    staff = make_user("viewer", "analyst")
    client.force_login(staff)
    page = client.get(reverse("import_detail", args=[campaign.slug, done.pk]) + "?page=1")
    body = page.content.decode()
    assert page.status_code == 200
    assert "\u202e" not in body and "\u200b" not in body  # shown as \u202e, \u200b
    assert "\\u202e8.8.8.8" in body and "<script>alert(1)</script>" not in body
    assert "U+FF18 FULLWIDTH DIGIT EIGHT" in body
