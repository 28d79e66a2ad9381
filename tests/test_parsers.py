"""Feed parsers without a database: every format, every reason, and hostile input.

The property tests hold the parsers to their contract: every line that is not a comment or
blank is accounted for exactly once (an Entry or an Issue), and parsing never raises, except
FormatError for a CSV without an `ip` column.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from campaign.addresses import AddressPolicy
from campaign.feeds.lines import MAX_LINE_BYTES, LineTooLong, head_lines, numbered_lines
from campaign.feeds.parsers import FORMATS, Entry, FormatError, Issue, detect_format, parse
from tests.conftest import FEEDS, examples

POLICY = AddressPolicy()


def run(text: str | bytes, fmt: str, policy: AddressPolicy = POLICY) -> list[Entry | Issue]:
    data = text.encode() if isinstance(text, str) else text
    return list(parse(numbered_lines(io.BytesIO(data)), fmt, policy))


def issues(items) -> dict[int, str]:
    return {i.line_no: i.reason for i in items if isinstance(i, Issue)}


def entries(items) -> list[Entry]:
    return [i for i in items if isinstance(i, Entry)]


# --- reading lines ------------------------------------------------------------------------


def test_lines_are_numbered_physically_without_endings_and_the_bom_is_not_a_line():
    data = b"\xef\xbb\xbf1.1.1.1\r\n\r\n# c\n2.2.2.2"
    assert list(numbered_lines(io.BytesIO(data))) == [
        (1, "1.1.1.1"), (2, ""), (3, "# c"), (4, "2.2.2.2"),
    ]


def test_a_bom_later_in_the_file_is_not_stripped():
    lines = list(numbered_lines(io.BytesIO(b"1.1.1.1\n\xef\xbb\xbf2.2.2.2\n")))
    assert lines[1] == (2, "\ufeff2.2.2.2")


def test_an_overlong_line_is_cut_to_a_short_marker_and_the_next_line_keeps_its_number():
    data = b"x" * (MAX_LINE_BYTES * 3) + b"\n8.8.8.8\n"
    lines = list(numbered_lines(io.BytesIO(data)))
    assert [no for no, _ in lines] == [1, 2]
    assert type(lines[0][1]) is LineTooLong and len(lines[0][1]) <= 200
    assert lines[1] == (2, "8.8.8.8")


def test_a_line_of_exactly_the_limit_is_not_too_long():
    data = b"a" * MAX_LINE_BYTES + b"\n" + b"b" * (MAX_LINE_BYTES + 1) + b"\n"
    kinds = [type(text) is LineTooLong for _no, text in numbered_lines(io.BytesIO(data))]
    assert kinds == [False, True]


def test_head_lines_rewinds_the_stream():
    stream = io.BytesIO(b"1.1.1.1\n2.2.2.2\n3.3.3.3\n")
    assert head_lines(stream, 2) == ["1.1.1.1", "2.2.2.2"]
    assert stream.tell() == 0


# --- plain ip lists -----------------------------------------------------------------------


def test_plain_lines_take_the_first_token_and_strip_inline_comments():
    items = run(" 82.44.79.141 \t\n99.232.84.14 # seen twice\n97.2.221.112\tgarbage\n", "ip")
    assert [e.ip for e in entries(items)] == ["82.44.79.141", "99.232.84.14", "97.2.221.112"]
    assert [e.line_no for e in entries(items)] == [1, 2, 3]


def test_plain_lines_report_every_reason_with_its_line_number():
    text = "\n".join([
        "10.1.2.3", "127.0.0.1", "256.17.4.9", "082.044.079.141", "100.64.12.7",
        "203.0.113.44", "0.0.0.0", "224.0.0.251", "fe80::1", "2001:db8::1", "198.18.0.1",
        "::ffff:8.8.8.8", "1.2.3.4\x00", "\xff\xfe8.8.8.8", "",
    ]).encode("latin-1")
    found = issues(run(text, "ip"))
    assert found == {
        1: "private", 2: "loopback", 3: "invalid", 4: "invalid", 5: "shared",
        6: "documentation", 7: "unspecified", 8: "multicast", 9: "link_local",
        10: "documentation", 11: "benchmarking", 12: "mapped", 13: "bad_bytes",
        14: "bad_bytes",
    }


def test_issue_content_shows_nul_bytes_visibly_and_is_capped():
    items = run(b"8.8.8\x00.8\n" + b"y" * 500 + b"\n", "ip")
    assert items[0].content == "8.8.8\\0.8"
    assert items[1].reason == "invalid" and len(items[1].content) == 200


def test_comment_and_blank_lines_produce_nothing():
    assert run("# header\n; semicolon\n   \n\t# indented\n\n", "ip") == []


# --- ip:port lists ------------------------------------------------------------------------


def test_proxy_lines_give_host_and_port_and_bracketed_ipv6():
    items = run("82.44.79.141:8080\n[2a0b:7a5:fe7f::1]:1080\n82.44.79.141:3128\n", "ipport")
    assert [(e.ip, e.port) for e in entries(items)] == [
        ("82.44.79.141", 8080), ("2a0b:7a5:fe7f::1", 1080), ("82.44.79.141", 3128),
    ]
    # Same host on two ports: two distinct keys, so neither is a duplicate.
    assert len({e.dedup_key for e in entries(items)}) == 3


@pytest.mark.parametrize(("line", "reason"), [
    ("6.160.110.57", "no_port"),
    ("191.209.170.163:99999", "bad_port"),
    ("112.47.52.142:0", "bad_port"),
    ("112.47.52.142:1234567", "bad_port"),
    ("112.47.52.142:\u0668\u0660", "bad_port"),  # Arabic-Indic digits are not a port
    ("not-a-proxy", "invalid"),
    ("2a17:9f50:6f91:b225:8407:9fbd:abff:8800:8080", "unbracketed_ipv6"),
    ("2a17:9f50::1", "no_port"),
    ("[2001:db8::1]:8080", "documentation"),
    ("[fe80::1]:3128", "link_local"),
    ("10.1.2.3:8080", "private"),
    ("host.example:8080", "invalid"),
    ("[82.44.79.141]:80", "mapped_or_ok"),
])
def test_proxy_lines_are_rejected_with_the_specific_reason(line, reason):
    items = run(line + "\n", "ipport")
    if reason == "mapped_or_ok":
        # A bracketed IPv4 is unusual but unambiguous.
        assert [e.ip for e in entries(items)] == ["82.44.79.141"]
        return
    assert issues(items) == {1: reason}


# --- networks -----------------------------------------------------------------------------


def test_drop_lines_give_hosts_and_mark_larger_networks():
    items = run("; header\n82.44.79.141/32 ; SBL1\n71.97.0.0/16 ; SBL117257\n", "drop")
    host, net = entries(items)
    assert (host.ip, host.tag, host.network_note) == ("82.44.79.141", "SBL1", "")
    assert net.tag == "SBL117257" and "not a host" in net.network_note


@pytest.mark.parametrize(("line", "reason"), [
    ("60.236.0.9/14 ; SBL146334", "host_bits"),
    ("191.56.133.45/33 ; SBL530035", "invalid"),
    ("256.1.0.0/16 ; SBL000003", "invalid"),
    ("garbage line without any network", "invalid"),
    ("10.0.0.0/8 ; SBL000001", "private"),
    ("203.0.113.0/24 ; SBL000002", "documentation"),
    ("100.0.0.0/8 ; SBL9", "reserved"),
])
def test_drop_lines_are_rejected_with_the_specific_reason(line, reason):
    items = run(line + "\n", "drop")
    assert issues(items) == {1: reason}
    if reason not in ("invalid", "host_bits"):
        assert items[0].message.startswith("covers non-public space")


def test_netset_lines_accept_bare_ips_and_cidrs_and_strip_comments():
    items = run("82.44.79.141\n71.97.0.0/16 # note\n69.144.247.232/31\n", "netset")
    assert [(e.dedup_key, bool(e.network_note)) for e in entries(items)] == [
        ("82.44.79.141/32", False), ("71.97.0.0/16", True), ("69.144.247.232/31", True),
    ]


def test_allowlisted_networks_are_accepted_by_network_parsers():
    policy = AddressPolicy(["127.0.0.0/8"])
    assert [e.ip for e in entries(run("127.0.0.9/32\n", "netset", policy))] == ["127.0.0.9"]
    assert issues(run("10.0.0.1/32\n", "netset", policy)) == {1: "private"}


# --- CSV ----------------------------------------------------------------------------------


CSV_HEADER = '"timestamp","ip","port","tag","asn","geo","sector"\n'


def test_csv_rows_keep_port_tag_time_country_asn_and_evidence():
    items = run(CSV_HEADER + '"2026-11-22 00:29:25","104.130.186.158",1080,"socks5",64501,'
                '"IN","Communications, Service Provider"\n', "csv")
    (entry,) = entries(items)
    assert (entry.line_no, entry.ip, entry.port, entry.tag) == (
        2, "104.130.186.158", 1080, "socks5")
    assert (entry.country, entry.asn) == ("IN", 64501)
    assert entry.seen_at.isoformat() == "2026-11-22T00:29:25+00:00"
    assert entry.evidence["sector"] == "Communications, Service Provider"
    assert "ip" not in entry.evidence


def test_csv_accepts_the_older_minimal_quoting():
    items = run("timestamp,ip,port,tag\n2026-11-22 00:29:25,104.130.186.158,1080,socks4\n", "csv")
    assert [(e.ip, e.tag) for e in entries(items)] == [("104.130.186.158", "socks4")]


def test_csv_rows_with_the_wrong_column_count_or_bad_values_are_rejected():
    items = run(CSV_HEADER + "\n".join([
        '"2026-11-22 00:29:25","104.130.186.158",1080',
        '"2026-11-22 00:29:25","10.20.30.40",1080,"socks5",1,"US",""',
        '"2026-11-22 00:29:25","104.130.186.158",70000,"socks5",1,"US",""',
        '"2026-11-22 00:29:25","104.130.186.158",\u00b2,"socks5",\u00b2,"US",""',
    ]) + "\n", "csv")
    assert issues(items) == {2: "columns", 3: "private", 4: "bad_port", 5: "bad_port"}


def test_csv_ignores_an_asn_that_is_not_a_plain_number():
    items = run(CSV_HEADER + '"2026-11-22 00:29:25","104.130.186.158",1080,"socks5",\u00b2,'
                '"I\u00d1",""\n', "csv")
    (entry,) = entries(items)
    assert (entry.asn, entry.country) == (None, "")


def test_csv_without_an_ip_column_is_a_format_error():
    with pytest.raises(FormatError, match="no 'ip' column"):
        run("timestamp,address,port\n1,2,3\n", "csv")


def test_an_unknown_format_is_a_format_error():
    with pytest.raises(FormatError, match="unknown format"):
        parse([], "xml", POLICY)


# --- format detection ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "fmt"), [
    ("plain-ips.txt", "ip"),
    ("plain-ips-crlf.txt", "ip"),
    ("plain-ips-bom.txt", "ip"),
    ("open-proxies.txt", "ipport"),
    ("2026-11-22-scan_http_proxy-example_cert-geo.csv", "csv"),
    ("2026-11-22-scan_socks-example_cert-geo.csv", "csv"),
    ("spamhaus-drop.txt", "drop"),
    ("example-level1.netset", "netset"),
])
def test_every_sample_feed_is_detected_as_its_format(name, fmt):
    with (FEEDS / name).open("rb") as stream:
        assert detect_format(head_lines(stream)) == fmt


@pytest.mark.parametrize(("sample", "message"), [
    ([], "no lines"),
    (["# only", "# comments"], "no line looks like an address"),
    (["hello", "world"], "no line looks like an address"),
    (["82.44.79.141:8080", "71.97.0.0/16"], "both ip:port and CIDR"),
    (["82.44.79.141:8080", "1.1.1.1", "2.2.2.2"], "some lines carry ports"),
])
def test_detection_refuses_to_guess_when_it_is_not_clear(sample, message):
    with pytest.raises(FormatError, match=message):
        detect_format(sample)


# --- properties: hostile input ------------------------------------------------------------


def _is_ignorable(line: bytes) -> bool:
    text = line.decode("utf-8", "replace").strip()
    return not text or text[0] in "#;"


_TOKENS = st.sampled_from([
    "82.44.79.141", "10.1.2.3", "2a0b:7a5:fe7f:fe21::1", "fe80::1", "82.44.79.141:8080",
    "[2a0b:7a5::1]:3128", "71.97.0.0/16", "82.44.79.141/32", "60.236.0.9/14 ; SBL1",
    "# comment", "; comment", "", "   ", "\t", "garbage", "1.2.3", "\uff18.8.8.8",
    "8.8.8.8\u200b", "\u202e8.8.8.8", "\ufeff8.8.8.8", "\u0668.8.8.8", "1.1.1.1\x00",
    '"2026-11-22 00:29:25","104.130.186.158",1080,"socks5"', "a,b,c", '"unterminated,',
    "1.1.1.1:\u00b2", "99.232.84.14 # inline", "\r",
])


@st.composite
def feed_line(draw) -> bytes:
    choice = draw(st.integers(0, 9))
    if choice <= 4:
        return draw(_TOKENS).encode()
    if choice <= 6:
        raw = draw(st.binary(max_size=40))
    elif choice <= 8:
        raw = draw(st.text(max_size=40)).encode("utf-8", "surrogatepass")
    else:
        # A huge line: its start decides whether it is a comment, its length makes it too long.
        start = draw(st.sampled_from([b"8.8.8.8 ", b"#", b"  x", b"\x00", b"1.1.1.1:80", b""]))
        raw = start + b"A" * draw(st.integers(MAX_LINE_BYTES + 1, MAX_LINE_BYTES * 3))
    return raw.replace(b"\n", b"").replace(b"\r", b"")


@st.composite
def feed_file(draw) -> tuple[bytes, list[bytes], bool]:
    lines = draw(st.lists(feed_line(), max_size=25))
    with_header = draw(st.booleans())
    if with_header:
        lines = [b'"timestamp","ip","port","tag"', *lines]
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    bom = draw(st.booleans())
    data = (b"\xef\xbb\xbf" if bom else b"") + ending.join(lines)
    if lines and draw(st.booleans()):
        data += ending
    if lines and not bom and lines[0].startswith(b"\xef\xbb\xbf"):
        lines = [lines[0][3:], *lines[1:]]  # the file's leading BOM is not part of line 1
    return data, lines, with_header


def _expected_line_numbers(lines: list[bytes], fmt: str) -> set[int]:
    expected = {no for no, line in enumerate(lines, 1) if not _is_ignorable(line)}
    if fmt == "csv":
        header = next((no for no, line in enumerate(lines, 1)
                       if line.decode("utf-8", "replace").strip()
                       and not line.decode("utf-8", "replace").lstrip().startswith("#")), None)
        expected.discard(header)
    return expected


@pytest.mark.fuzz
@settings(max_examples=examples(250))
@given(feed_file())
@example((b"1.1.1.1\x00\n", [b"1.1.1.1\x00"], False))
@example((b" " * 300 + b"8.8.8.8" + b"A" * 9000, [b" " * 300 + b"8.8.8.8" + b"A" * 9000], False))
def test_every_non_comment_line_is_accounted_for_exactly_once_in_every_format(case):
    data, lines, _with_header = case
    for fmt in FORMATS:
        try:
            items = list(parse(numbered_lines(io.BytesIO(data)), fmt, POLICY))
        except FormatError:
            assert fmt == "csv"
            continue
        counts = Counter(item.line_no for item in items)
        assert set(counts) == _expected_line_numbers(lines, fmt), fmt
        assert max(counts.values(), default=1) == 1, fmt
        for item in items:
            line = lines[item.line_no - 1]
            if len(line) > MAX_LINE_BYTES:
                assert isinstance(item, Issue) and item.reason == "too_long", (fmt, item)
            if isinstance(item, Issue):
                assert item.reason and item.message and len(item.content) <= 200


@pytest.mark.fuzz
@settings(max_examples=examples(100))
@given(st.lists(feed_line().filter(lambda line: len(line) < 200), max_size=20))
def test_crlf_and_lf_files_parse_to_the_same_results(lines):
    lf = b"\n".join(lines)
    crlf = b"\r\n".join(lines)
    for fmt in ("ip", "ipport", "drop", "netset"):
        assert run(lf, fmt) == run(crlf, fmt)


@pytest.mark.fuzz
@settings(max_examples=examples(300))
@given(st.lists(st.text(max_size=30), max_size=30))
def test_detection_either_names_a_format_or_raises_a_format_error(sample):
    try:
        assert detect_format(sample) in FORMATS
    except FormatError as exc:
        assert str(exc)


def test_the_sample_feeds_directory_has_the_files_the_readme_describes():
    names = {p.name for p in Path(FEEDS).iterdir()}
    assert {"plain-ips.txt", "open-proxies.txt", "spamhaus-drop.txt"} <= names


def test_shadowserver_columns_are_read_by_name_in_any_order():
    """Shadowserver reorders and adds columns (severity, hostname_source, sector): the
    header decides which value is which, never the position."""
    data = (b'"sector","port","severity","geo","ip","timestamp","hostname_source","asn"\n'
            b'"Hosting",3128,"medium","de","82.44.76.20","2026-11-22 00:29:25","ptr",64501\n')
    [entry] = list(parse(numbered_lines(io.BytesIO(data)), "csv", POLICY))

    assert (entry.ip, entry.port, entry.country, entry.asn) == ("82.44.76.20", 3128, "DE", 64501)
    assert entry.seen_at.isoformat() == "2026-11-22T00:29:25+00:00"
    assert entry.evidence["severity"] == "medium" and entry.evidence["sector"] == "Hosting"
