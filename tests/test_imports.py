"""Feed imports end to end through `import_feed`, on the real PostgreSQL.

The expected numbers are the ones in tests/fixtures/feeds/README.md: physical lines,
added hosts, rejected lines (with their line numbers and reasons) and in-file duplicates.
Networks larger than one address in the DROP and netset lists are rejected too ("we notify
hosts, we do not scan networks"), so their `rejected` is the README's count plus the networks.
"""

from __future__ import annotations

import io
import ipaddress
import json
import tracemalloc
from dataclasses import dataclass, field

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from campaign import kinds
from campaign.feeds.parsers import FORMATS
from campaign.imports import create_import, run_import
from campaign.models import FeedImport, Host, ImportLineIssue, Sighting
from campaign.services import create_campaign
from tests.conftest import FEEDS, examples

pytestmark = pytest.mark.django_db


def import_feed(*args: str) -> str:
    """Run the command; return its last stdout line (the summary)."""
    out = io.StringIO()
    call_command("import_feed", *map(str, args), stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def show_host(slug: str, ip: str) -> dict:
    out = io.StringIO()
    call_command("show_host", slug, ip, "--json", stdout=out)
    return json.loads(out.getvalue())


def last_import() -> FeedImport:
    return FeedImport.objects.order_by("-id").first()


@dataclass
class Expected:
    name: str
    kind: str
    lines: int
    added: int
    rejected: dict[int, str]
    duplicates: dict[int, int]  # line -> the first line it repeats
    networks: int = 0
    sightings: int = 0
    fmt: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def summary(self) -> str:
        rejected = len(self.rejected) + self.networks
        return f"lines={self.lines} added={self.added} known=0 rejected={rejected}"


PLAIN_REJECTED = {
    41: "private", 50: "private", 59: "loopback", 73: "invalid", 89: "invalid", 98: "shared",
    120: "documentation", 131: "unspecified", 141: "multicast", 151: "invalid",
    161: "invalid", 185: "link_local", 189: "documentation",
}

FEED_CASES = [
    Expected("plain-ips.txt", "relay", 192, 146, PLAIN_REJECTED, {82: 54}, sightings=146,
             fmt="ip"),
    Expected("plain-ips-crlf.txt", "relay", 192, 146, PLAIN_REJECTED, {82: 54}, sightings=146,
             fmt="ip"),
    Expected("plain-ips-bom.txt", "relay", 46, 42,
             {13: "private", 30: "invalid", 37: "invalid"}, {21: 5}, sightings=42, fmt="ip"),
    Expected("open-proxies.txt", "proxy", 107, 89, {
        6: "private", 16: "private", 25: "loopback", 34: "invalid", 50: "no_port",
        58: "bad_port", 66: "bad_port", 75: "invalid", 83: "documentation", 91: "link_local",
        98: "unbracketed_ipv6",
    }, {42: 12, 100: 29}, sightings=94, fmt="ipport"),
    Expected("2026-11-22-scan_http_proxy-example_cert-geo.csv", "proxy", 52, 47,
             {8: "private", 26: "columns", 36: "shared"}, {18: 17}, sightings=47, fmt="csv"),
    Expected("2026-11-22-scan_socks-example_cert-geo.csv", "proxy", 31, 28,
             {6: "private"}, {21: 12}, sightings=28, fmt="csv"),
    Expected("spamhaus-drop.txt", "relay", 50, 10, {
        7: "private", 16: "host_bits", 27: "documentation", 34: "invalid", 41: "invalid",
        46: "invalid",
    }, {21: 20}, networks=29, sightings=10, fmt="drop"),
    Expected("example-level1.netset", "relay", 117, 41, {
        34: "unspecified", 38: "private", 76: "shared", 80: "invalid", 86: "loopback",
        94: "invalid", 100: "link_local", 101: "private", 107: "documentation",
        108: "private", 117: "multicast",
    }, {65: 64}, networks=31, sightings=41, fmt="netset"),
]


@pytest.mark.parametrize("case", FEED_CASES, ids=lambda c: c.name)
def test_each_sample_feed_imports_with_the_readme_counts_and_line_reasons(campaign, case):
    summary = import_feed("--campaign", campaign.slug, "--kind", case.kind, FEEDS / case.name)
    assert summary == case.summary

    feed_import = last_import()
    assert feed_import.status == FeedImport.DONE
    assert feed_import.detected_format == case.fmt
    assert feed_import.duplicates == len(case.duplicates)
    issues = list(feed_import.issues.order_by("line_no"))
    rejected = {i.line_no: i.reason for i in issues if i.rejected and i.reason != "network"}
    assert rejected == case.rejected
    duplicates = {i.line_no: i.message for i in issues if not i.rejected}
    assert duplicates == {line: f"duplicate of line {first}"
                          for line, first in case.duplicates.items()}
    assert {i.reason for i in issues if not i.rejected} <= {"duplicate"}
    assert all(i.message and i.content for i in issues)

    networks = [i for i in issues if i.reason == "network"]
    assert len(networks) == case.networks
    for issue in networks:
        assert issue.rejected and "not a host" in issue.message
        assert ipaddress.ip_network(issue.content).num_addresses > 1
    assert not {i.line_no for i in networks} & (set(case.rejected) | set(case.duplicates))

    assert Host.objects.filter(campaign=campaign).count() == case.added
    assert Sighting.objects.filter(feed_import=feed_import).count() == case.sightings
    bit = kinds.KIND_BITS[case.kind]
    assert set(Host.objects.values_list("kinds", flat=True)) == {bit}


def test_the_summary_counts_rejected_lines_but_not_duplicates_or_comments(campaign):
    import_feed("--campaign", campaign.slug, "--kind", "relay", FEEDS / "plain-ips.txt")
    feed_import = last_import()
    assert feed_import.issues.filter(rejected=True).count() == feed_import.rejected == 13
    assert feed_import.issues.filter(rejected=False).count() == 1


def test_show_rejected_prints_each_issue_before_the_summary(campaign):
    out = io.StringIO()
    call_command("import_feed", "--campaign", campaign.slug, "--kind", "relay",
                 "--show-rejected", str(FEEDS / "plain-ips-bom.txt"), stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert lines[-1] == "lines=46 added=42 known=0 rejected=3"
    assert lines[0].startswith("line 13: private: ")
    assert any(line.startswith("line 21: duplicate: duplicate of line 5") for line in lines)


def test_reimporting_a_feed_adds_sightings_not_hosts(campaign):
    args = ("--campaign", campaign.slug, "--kind", "proxy", FEEDS / "open-proxies.txt")
    assert import_feed(*args) == "lines=107 added=89 known=0 rejected=11"
    first = last_import()
    assert import_feed(*args) == "lines=107 added=0 known=89 rejected=11"
    second = last_import()
    assert Host.objects.filter(campaign=campaign).count() == 89
    assert Host.objects.values("ip").distinct().count() == 89
    assert Sighting.objects.filter(feed_import=first).count() == 94
    assert Sighting.objects.filter(feed_import=second).count() == 94
    issue_rows = lambda fi: list(fi.issues.values_list("line_no", "reason", "rejected"))  # noqa: E731
    assert issue_rows(first) == issue_rows(second)


def test_known_counts_only_hosts_of_this_file_already_in_the_campaign(campaign):
    import_feed("--campaign", campaign.slug, "--kind", "proxy", FEEDS / "open-proxies.txt")
    # 179.231.41.242, 201.88.167.146 and 82.44.79.141 are in both lists.
    summary = import_feed("--campaign", campaign.slug, "--kind", "relay", FEEDS / "plain-ips.txt")
    assert summary == "lines=192 added=143 known=3 rejected=13"
    assert Host.objects.filter(campaign=campaign).count() == 89 + 143


def test_hosts_are_unique_per_campaign_not_globally(campaign, agency):
    other = create_campaign(slug="other", agency_name=agency.name, kinds="relay")
    import_feed("--campaign", campaign.slug, "--kind", "relay", FEEDS / "plain-ips-bom.txt")
    summary = import_feed("--campaign", other.slug, FEEDS / "plain-ips-bom.txt")
    assert summary == "lines=46 added=42 known=0 rejected=3"
    assert Host.objects.count() == 84


def test_a_host_in_two_feeds_keeps_every_kind_port_and_sighting(campaign):
    import_feed("--campaign", campaign.slug, "--kind", "relay", FEEDS / "plain-ips.txt")
    import_feed("--campaign", campaign.slug, "--kind", "proxy", FEEDS / "open-proxies.txt")
    import_feed("--campaign", campaign.slug, "--kind", "relay", FEEDS / "example-level1.netset")

    host = show_host(campaign.slug, "82.44.79.141")
    assert host["kinds"] == ["relay", "proxy"]
    assert host["ports"] == [59341]
    assert sorted((s["feed"], s["line"]) for s in host["sightings"]) == [
        ("example-level1.netset", 70), ("open-proxies.txt", 67), ("plain-ips.txt", 90),
    ]
    assert {s["kind"] for s in host["sightings"]} == {"relay", "proxy"}
    assert host["state"] == "imported"

    two_ports = show_host(campaign.slug, "84.255.101.152")
    assert two_ports["kinds"] == ["proxy"]
    assert two_ports["ports"] == [3128, 8118]
    assert len(two_ports["sightings"]) == 2


def test_a_later_relay_import_does_not_drop_the_proxy_kind(campaign):
    import_feed("--campaign", campaign.slug, "--kind", "proxy", FEEDS / "open-proxies.txt")
    import_feed("--campaign", campaign.slug, "--kind", "relay", FEEDS / "plain-ips.txt")
    host = Host.objects.get(campaign=campaign, ip="179.231.41.242")
    assert host.kinds == kinds.RELAY | kinds.PROXY
    only_proxy = Host.objects.get(campaign=campaign, ip="84.255.101.152")
    assert only_proxy.kinds == kinds.PROXY


def test_crlf_gives_the_same_counts_and_line_numbers_as_lf(campaign, agency):
    other = create_campaign(slug="crlf", agency_name=agency.name, kinds="relay")
    lf = import_feed("--campaign", campaign.slug, "--kind", "relay", FEEDS / "plain-ips.txt")
    lf_import = last_import()
    crlf = import_feed("--campaign", other.slug, FEEDS / "plain-ips-crlf.txt")
    crlf_import = last_import()
    assert lf == crlf
    rows = lambda fi: list(  # noqa: E731
        fi.issues.order_by("line_no").values_list("line_no", "reason", "rejected", "content"))
    assert rows(lf_import) == rows(crlf_import)
    sighting_lines = lambda fi: sorted(  # noqa: E731
        Sighting.objects.filter(feed_import=fi).values_list("line_no", flat=True))
    assert sighting_lines(lf_import) == sighting_lines(crlf_import)


def test_csv_rows_give_hosts_their_country_asn_and_sightings_their_tags(campaign):
    import_feed("--campaign", campaign.slug, FEEDS / "2026-11-22-scan_socks-example_cert-geo.csv")
    host = Host.objects.get(campaign=campaign, ip="101.224.89.30")
    assert (host.kinds, host.country, host.asn) == (kinds.PROXY, "US", 65547)
    assert host.first_seen.isoformat() == "2026-11-22T00:50:30+00:00"
    sighting = Sighting.objects.get(host=host)
    assert (sighting.port, sighting.tag, sighting.line_no) == (1080, "socks5", 3)
    assert sighting.evidence["hostname"] == "101-224-89-30.dyn.isp-48.example"
    assert sighting.evidence["sector"] == "Communications, Service Provider, and Hosting Service"
    assert set(Sighting.objects.values_list("tag", flat=True)) == {"socks4", "socks5"}


def test_a_csv_row_with_a_nul_byte_in_a_text_column_still_imports(campaign, tmp_path):
    path = tmp_path / "scan.csv"
    path.write_bytes(b'"timestamp","ip","port","tag","hostname"\n'
                     b'"2026-11-22 00:29:25","104.130.186.158",1080,"socks5","a\x00b"\n')
    assert import_feed("--campaign", campaign.slug, path) == "lines=2 added=1 known=0 rejected=0"


# --- hostile and odd files ----------------------------------------------------------------


def test_a_five_megabyte_line_without_newline_is_rejected_as_too_long_in_flat_memory(
    campaign, tmp_path
):
    path = tmp_path / "huge.txt"
    path.write_bytes(b"82.44.79.141 " * (5 * 1024 * 1024 // 13))
    tracemalloc.start()
    try:
        summary = import_feed("--campaign", campaign.slug, "--kind", "relay", path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary == "lines=1 added=0 known=0 rejected=1"
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes: the line was held in memory"
    (issue,) = last_import().issues.all()
    assert (issue.line_no, issue.reason) == (1, "too_long")
    assert issue.content.startswith("82.44.79.141 82.44.79.141") and len(issue.content) <= 200


def test_an_overlong_line_between_good_ones_keeps_the_numbering(campaign, tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"82.44.79.141\n" + b"9" * 20000 + b"\r\n99.232.84.14\n")
    summary = import_feed("--campaign", campaign.slug, "--kind", "relay", path)
    assert summary == "lines=3 added=2 known=0 rejected=1"
    assert list(last_import().issues.values_list("line_no", "reason")) == [(2, "too_long")]
    assert sorted(Sighting.objects.values_list("line_no", flat=True)) == [1, 3]


def test_binary_garbage_is_rejected_line_by_line_without_aborting(campaign, tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"82.44.79.141\n" + bytes(range(256)).replace(b"\n", b"") + b"\n"
                     + b"\x00\x00\x00\n\xff\xfe\xfd\n99.232.84.14\x00\n")
    summary = import_feed("--campaign", campaign.slug, "--format", "ip", "--kind", "relay", path)
    assert summary == "lines=5 added=1 known=0 rejected=4"
    reasons = dict(last_import().issues.values_list("line_no", "reason"))
    assert reasons == {2: "bad_bytes", 3: "bad_bytes", 4: "bad_bytes", 5: "bad_bytes"}


def test_an_empty_file_imports_nothing_when_the_format_is_given(campaign, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    assert import_feed("--campaign", campaign.slug, "--format", "ip", "--kind", "relay",
                       path) == "lines=0 added=0 known=0 rejected=0"


def test_an_empty_file_cannot_be_auto_detected_and_says_so(campaign, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(CommandError, match="no lines"):
        import_feed("--campaign", campaign.slug, "--kind", "relay", path)
    assert last_import().status == FeedImport.FAILED


def test_a_file_of_only_comments_counts_its_lines_and_nothing_else(campaign, tmp_path):
    path = tmp_path / "comments.txt"
    path.write_bytes(b"# header\n#\n\n; another\n   \n# end")
    summary = import_feed("--campaign", campaign.slug, "--format", "ip", "--kind", "relay", path)
    assert summary == "lines=6 added=0 known=0 rejected=0"
    assert not ImportLineIssue.objects.exists()


def test_a_csv_format_on_a_plain_list_fails_with_a_clear_error(campaign):
    with pytest.raises(CommandError, match="failed: CSV header on line 1 has no 'ip' column"):
        import_feed("--campaign", campaign.slug, "--format", "csv", "--kind", "proxy",
                    FEEDS / "plain-ips-bom.txt")
    feed_import = last_import()
    assert feed_import.status == FeedImport.FAILED
    assert "no 'ip' column" in feed_import.error
    assert not Host.objects.exists()


def test_an_unknown_format_is_refused_by_the_command(campaign):
    with pytest.raises(CommandError, match="invalid choice: 'xml'"):
        import_feed("--campaign", campaign.slug, "--format", "xml", FEEDS / "plain-ips.txt")


def test_a_wrong_explicit_format_rejects_every_line_with_a_reason(campaign):
    summary = import_feed("--campaign", campaign.slug, "--format", "ipport", "--kind", "proxy",
                          FEEDS / "plain-ips-bom.txt")
    assert summary == "lines=46 added=0 known=0 rejected=46"
    assert set(last_import().issues.values_list("reason", flat=True)) >= {"no_port"}


def test_an_ambiguous_feed_must_name_its_format(campaign, tmp_path):
    path = tmp_path / "mixed.txt"
    path.write_text("82.44.79.141:8080\n71.97.0.0/16\n")
    with pytest.raises(CommandError, match="choose the format explicitly"):
        import_feed("--campaign", campaign.slug, "--kind", "proxy", path)
    assert import_feed("--campaign", campaign.slug, "--kind", "proxy", "--format", "netset",
                       path) == "lines=2 added=0 known=0 rejected=2"


def test_a_two_kind_campaign_needs_the_kind_of_a_plain_list(campaign):
    with pytest.raises(CommandError, match="--kind relay or --kind proxy"):
        import_feed("--campaign", campaign.slug, FEEDS / "plain-ips.txt")
    assert not Host.objects.exists()


def test_a_two_kind_campaign_takes_proxy_lists_as_proxies(campaign):
    import_feed("--campaign", campaign.slug, FEEDS / "open-proxies.txt")
    assert set(Host.objects.values_list("kinds", flat=True)) == {kinds.PROXY}


def test_a_one_kind_campaign_lends_its_kind_and_refuses_the_other(agency):
    relays = create_campaign(slug="relays", agency_name=agency.name, kinds="relay")
    import_feed("--campaign", relays.slug, FEEDS / "plain-ips-bom.txt")
    assert set(Host.objects.values_list("kinds", flat=True)) == {kinds.RELAY}
    with pytest.raises(CommandError, match="does not target proxy hosts"):
        import_feed("--campaign", relays.slug, "--kind", "proxy", FEEDS / "open-proxies.txt")


def test_an_unknown_campaign_is_an_error(db):
    with pytest.raises(CommandError, match="no campaign with slug 'nope'"):
        import_feed("--campaign", "nope", FEEDS / "plain-ips.txt")


def test_a_missing_file_is_an_error(campaign, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        import_feed("--campaign", campaign.slug, "--kind", "relay", tmp_path / "missing.txt")


def test_a_file_over_the_size_limit_is_refused_before_reading(campaign, settings):
    settings.FEED_MAX_BYTES = 1000
    with pytest.raises(CommandError, match="over the 1000-byte limit"):
        import_feed("--campaign", campaign.slug, "--kind", "relay", FEEDS / "plain-ips.txt")
    assert not FeedImport.objects.exists()


def test_allowlisted_lab_addresses_are_imported(campaign, settings, tmp_path):
    settings.PROBE_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    path = tmp_path / "lab.txt"
    path.write_text("127.0.0.5\n127.0.0.6\n10.0.0.1\n")
    summary = import_feed("--campaign", campaign.slug, "--kind", "relay", path)
    assert summary == "lines=3 added=2 known=0 rejected=1"


def test_a_retried_import_starts_over_cleanly_after_a_crash(campaign):
    feed_import = create_import(campaign=campaign, source=str(FEEDS / "plain-ips-bom.txt"),
                                kind="relay")
    # What a worker killed mid-stream leaves behind: issue rows and a half-filled staging table.
    ImportLineIssue.objects.create(feed_import=feed_import, line_no=13, content="x",
                                   reason="private", message="x")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE UNLOGGED TABLE campaign_import_stg_{feed_import.pk} "
                       "(line_no integer, ip inet)")
        cursor.execute(f"INSERT INTO campaign_import_stg_{feed_import.pk} VALUES (1, '8.8.8.8')")
    FeedImport.objects.filter(pk=feed_import.pk).update(status=FeedImport.RUNNING, lines=20)

    done = run_import(feed_import.pk)
    assert done.summary_line == "lines=46 added=42 known=0 rejected=3"
    assert done.issues.count() == 4
    assert not Host.objects.filter(ip="8.8.8.8").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"campaign_import_stg_{feed_import.pk}"])
        assert cursor.fetchone()[0] is None
    # Running a finished import again is a no-op.
    assert run_import(feed_import.pk).summary_line == done.summary_line
    assert Sighting.objects.count() == 42


def test_campaign_status_sums_the_imports(campaign):
    import_feed("--campaign", campaign.slug, "--kind", "relay", FEEDS / "plain-ips.txt")
    import_feed("--campaign", campaign.slug, "--kind", "proxy", FEEDS / "open-proxies.txt")
    out = io.StringIO()
    call_command("campaign_status", campaign.slug, "--json", stdout=out)
    status = json.loads(out.getvalue())
    assert status["hosts"]["total"] == 146 + 89 - 3
    assert status["hosts"]["by_state"]["imported"] == 232
    assert status["imports"]["total"] == 2
    assert status["imports"]["by_status"]["done"] == 2
    assert (status["imports"]["lines"], status["imports"]["added"], status["imports"]["known"],
            status["imports"]["rejected"]) == (299, 232, 3, 24)


# --- property: whatever the file holds, the import finishes and accounts for every line -------


_DB_LINES = st.one_of(
    st.sampled_from([
        "82.44.79.141", "99.232.84.14", "82.44.79.141", "10.1.2.3", "2a0b:7a5:fe7f::1",
        "82.44.79.141:8080", "[2a0b:7a5::1]:3128", "82.44.79.141:8080", "71.97.0.0/16",
        "82.44.79.141/32", "97.2.221.112/32 ; SBL\t1\\x", "71.97.0.0/16 ; SBL2", "# comment",
        "", "garbage\\N", "1.1.1.1\x00", '"2026-11-22 00:29:25","104.130.186.158",1080,"a\tb"',
        '"x","82.44.79.141","","\\\\"', "\ufeff8.8.8.8",
    ]),
    st.text(max_size=30),
).map(lambda text: text.replace("\n", "").replace("\r", ""))


@pytest.mark.fuzz
@settings(max_examples=examples(40))
@given(lines=st.lists(_DB_LINES, max_size=15), fmt=st.sampled_from(FORMATS))
def test_an_import_of_arbitrary_lines_finishes_and_accounts_for_every_line(
    campaign, tmp_path, lines, fmt
):
    lines = ['"timestamp","ip","port","tag"', *lines] if fmt == "csv" else lines
    path = tmp_path / "feed.txt"
    path.write_bytes("".join(f"{line}\r\n" for line in lines).encode("utf-8", "surrogatepass"))
    feed_import = create_import(campaign=campaign, source=str(path), fmt=fmt, kind="relay")
    done = run_import(feed_import.pk)
    assert done.status == FeedImport.DONE
    assert done.lines == len(lines)
    ignorable = sum(1 for line in lines if not line.strip() or line.strip()[0] in "#;")
    accounted = (done.issues.count()
                 + Sighting.objects.filter(feed_import=done).count())
    header = 1 if fmt == "csv" else 0
    assert accounted == len(lines) - ignorable - header
    assert done.rejected == done.issues.filter(rejected=True).count()
    assert done.duplicates == done.issues.filter(rejected=False).count()


def test_relisting_within_the_hour_rewrites_no_host_but_later_sightings_do(campaign, tmp_path):
    from datetime import UTC, datetime, timedelta

    import time_machine

    feed = tmp_path / "feed.txt"
    feed.write_text("82.44.79.141\n99.232.84.14\n")
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        assert import_feed("--campaign", campaign.slug, "--kind", "relay", feed) == \
            "lines=2 added=2 known=0 rejected=0"
    with time_machine.travel(start + timedelta(minutes=30), tick=False):
        assert import_feed("--campaign", campaign.slug, "--kind", "relay", feed) == \
            "lines=2 added=0 known=2 rejected=0"
    host = Host.objects.get(campaign=campaign, ip="82.44.79.141")
    assert host.last_seen == start  # unchanged: nothing new within the hour
    assert Sighting.objects.filter(host=host).count() == 2  # but the sighting is kept
    # A new kind is news at once.
    with time_machine.travel(start + timedelta(minutes=40), tick=False):
        import_feed("--campaign", campaign.slug, "--kind", "proxy", feed)
    host = Host.objects.get(pk=host.pk)
    assert host.kind_names == ["relay", "proxy"]
    assert host.last_seen == start + timedelta(minutes=40)
    # Hours later the host's last sighting moves forward.
    later = start + timedelta(hours=3)
    with time_machine.travel(later, tick=False):
        import_feed("--campaign", campaign.slug, "--kind", "relay", feed)
    assert Host.objects.get(pk=host.pk).last_seen == later


def test_a_relative_path_is_stored_absolute_so_a_worker_elsewhere_finds_it(
    campaign, tmp_path, monkeypatch
):
    (tmp_path / "feed.txt").write_text("82.44.79.141\n")
    monkeypatch.chdir(tmp_path)
    feed_import = create_import(campaign=campaign, source="feed.txt", kind="relay")
    assert feed_import.source == str(tmp_path / "feed.txt")
    assert feed_import.feed.name == "feed.txt"
    monkeypatch.chdir("/")
    assert run_import(feed_import.pk).summary_line == "lines=1 added=1 known=0 rejected=0"
