"""IntelMQ events in (`import_feed --format intelmq`) and out (`export_intelmq`).

The fixture's lines and what each must become are in tests/fixtures/feeds/README.md.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from campaign import kinds
from campaign.feeds.intelmq import event_kind, flatten
from campaign.feeds.parsers import detect_format
from campaign.models import Host, ImportLineIssue, Sighting
from campaign.services import create_campaign
from tests.conftest import FEEDS

pytestmark = pytest.mark.django_db

EVENTS = FEEDS / "intelmq-events.jsonl"


def import_feed(*args: str) -> str:
    out = io.StringIO()
    call_command("import_feed", *map(str, args), stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def issues() -> dict[int, str]:
    return dict(ImportLineIssue.objects.values_list("line_no", "reason"))


def test_events_become_hosts_of_the_kind_their_classification_names(campaign):
    summary = import_feed("--campaign", campaign.slug, "--format", "intelmq", EVENTS)

    assert summary == "lines=14 added=4 known=0 rejected=6"
    hosts = {str(h.ip): h for h in Host.objects.filter(campaign=campaign)}
    assert set(hosts) == {"36.138.116.5", "104.130.186.158", "201.203.210.3",
                          "2a0b:7a5:fe7f:fe21::1"}
    assert hosts["36.138.116.5"].kinds == kinds.PROXY
    assert hosts["201.203.210.3"].kinds == kinds.RELAY
    assert hosts["2a0b:7a5:fe7f:fe21::1"].kinds == kinds.PROXY
    assert (hosts["36.138.116.5"].country, hosts["36.138.116.5"].asn) == ("CN", 64501)
    assert (hosts["201.203.210.3"].country, hosts["201.203.210.3"].asn) == ("BR", 65547)
    assert issues() == {5: "no_kind", 6: "no_source_ip", 7: "private", 8: "duplicate",
                        9: "bad_port", 10: "bad_json", 13: "bad_json"}


def test_the_rest_of_the_event_is_kept_as_the_sighting_evidence(campaign):
    import_feed("--campaign", campaign.slug, "--format", "intelmq", EVENTS)

    sightings = Sighting.objects.filter(host__ip="36.138.116.5").order_by("line_no")
    assert [(s.line_no, s.port, s.kind) for s in sightings] == [
        (1, 3128, kinds.PROXY), (14, 8080, kinds.PROXY)]
    first = sightings[0]
    assert first.tag == "Shadowserver Open-HTTP-Proxy"
    assert first.seen_at.isoformat() == "2026-11-22T00:12:09+00:00"
    assert first.evidence["classification.identifier"] == "open-http-proxy"
    assert first.evidence["extra.via"] == "1.1 squid"
    assert first.evidence["extra.http_code"] == "200"
    assert "raw" not in first.evidence and "source.ip" not in first.evidence
    socks = Sighting.objects.get(host__ip="104.130.186.158")
    assert socks.evidence["source.abuse_contact"] == "abuse@isp-104.example"
    nested = Sighting.objects.get(host__ip="201.203.210.3")
    assert nested.tag == "CERT relay scan"
    assert nested.seen_at.isoformat() == "2026-11-21T18:00:00+00:00"
    ipv6 = Sighting.objects.get(host__ip="2a0b:7a5:fe7f:fe21::1")
    assert ipv6.seen_at.isoformat() == "2026-11-20T09:00:00+00:00"  # +01:00 read as such


def test_an_explicit_kind_takes_the_lines_whose_classification_names_none(campaign):
    summary = import_feed("--campaign", campaign.slug, "--format", "intelmq", "--kind",
                          "proxy", EVENTS)

    assert summary == "lines=14 added=5 known=0 rejected=5"
    assert Host.objects.get(ip="112.47.52.142").kinds == kinds.PROXY
    # A line's own classification still wins over the import's kind.
    assert Host.objects.get(ip="201.203.210.3").kinds == kinds.RELAY


def test_a_proxy_campaign_refuses_relay_events_with_a_reason(agency):
    proxies = create_campaign(slug="proxies-only", agency_name=agency.name, kinds="proxy")

    summary = import_feed("--campaign", proxies.slug, "--format", "intelmq", EVENTS)

    assert summary == "lines=14 added=3 known=0 rejected=7"
    issue = ImportLineIssue.objects.get(line_no=3)
    assert issue.reason == "kind_not_targeted"
    assert "classified as relay" in issue.message and "proxy hosts only" in issue.message
    assert not Host.objects.filter(ip="201.203.210.3").exists()


def test_auto_detection_recognises_intelmq_events(campaign):
    summary = import_feed("--campaign", campaign.slug, EVENTS)

    assert summary == "lines=14 added=4 known=0 rejected=6"
    assert detect_format(EVENTS.read_text().splitlines()[:5]) == "intelmq"


def test_reimporting_the_same_events_adds_nothing(campaign):
    import_feed("--campaign", campaign.slug, "--format", "intelmq", EVENTS)
    assert import_feed("--campaign", campaign.slug, "--format", "intelmq",
                       EVENTS) == "lines=14 added=0 known=4 rejected=6"


@pytest.mark.parametrize(("event", "kind"), [
    ({"classification.identifier": "open-socks"}, "proxy"),
    ({"classification.identifier": "Open-HTTP-Proxy"}, "proxy"),
    ({"classification.type": "vulnerable-system", "classification.identifier": "open-relay"},
     "relay"),
    ({"classification.type": "proxy"}, "proxy"),
    ({"classification.type": "vulnerable-system"}, ""),
    ({"classification.type": "vulnerable-system", "classification.identifier": "open-ipp"}, ""),
    ({}, ""),
])
def test_classification_to_kind(event, kind):
    assert event_kind(event) == kind


def test_nested_events_flatten_to_harmonization_names_but_extra_stays_whole():
    assert flatten({"source": {"ip": "x", "geolocation": {"cc": "DE"}},
                    "extra": {"a": {"b": 1}}}) == {
        "source.ip": "x", "source.geolocation.cc": "DE", "extra": {"a": {"b": 1}}}


def test_export_writes_verified_findings_as_events(campaign, tmp_path):
    from campaign import states  # noqa: PLC0415
    from probes.verification.models import ProbeResult  # noqa: PLC0415
    from tests.letters.conftest import add_finding  # noqa: PLC0415

    host = add_finding(campaign, ip="82.44.76.20", check="smtp_relay", port=25,
                       email="abuse@isp.example")
    add_finding(campaign, ip="82.44.76.21", email="a@b.example", state=states.REMEDIATED)
    closed_since = add_finding(campaign, ip="82.44.76.22", email="a@b.example",
                               check="http_proxy", port=8080)
    # Its latest result says closed: the older "open" is history, not a finding.
    first = ProbeResult.objects.get(host=closed_since)
    ProbeResult.objects.create(run=first.run, host=closed_since, check_name="http_proxy",
                               port=8080, verdict="not_open")
    out = tmp_path / "events.jsonl"
    stdout = io.StringIO()
    call_command("export_intelmq", "--campaign", campaign.slug, "--out", str(out),
                 stdout=stdout)

    assert stdout.getvalue().strip().splitlines()[-1] == "events=1"
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(events) == 1
    event = events[0]
    assert event["source.ip"] == str(host.ip)
    assert event["classification.identifier"] == "open-smtp-relay"
    assert event["classification.type"] == "vulnerable-system"
    assert event["source.port"] == 25
    assert event["source.abuse_contact"] == "abuse@isp.example"
    assert event["feed.provider"] == campaign.agency.name
    # What we export, IntelMQ reads back: the same import path takes it as a relay.
    relays = create_campaign(slug="round-trip", agency_name=campaign.agency.name, kinds="relay")
    assert import_feed("--campaign", relays.slug, out) == "lines=1 added=1 known=0 rejected=0"
