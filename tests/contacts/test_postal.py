"""Postal addresses from the registry answers, in each registry's real shape."""

import json

import pytest

from probes.contacts.postal import from_rdap, from_whois
from tests.contacts.fakes import FIXTURES


def rdap(name: str):
    return from_rdap(json.loads((FIXTURES / "rdap" / name).read_text()), "Org")


def whois(name: str):
    return from_whois((FIXTURES / "whois" / name).read_text(errors="replace"), "Org")


def test_arin_rdap_gives_the_registrant_s_label():
    found = rdap("arin-ip-99.232.0.0-17.json")
    assert (found.role, found.source) == ("registrant", "rdap")
    assert found.lines == ("4100 Pier Avenue", "Suite 300", "Norfolk", "VA", "23510",
                           "United States")
    assert found.text.startswith("Org\n4100 Pier Avenue")


def test_a_street_only_registrant_loses_to_a_complete_address_of_another_role():
    found = rdap("apnic-ip-220.201.144.0-21.json")  # the registrant's label: "41 Esplanade"
    assert found.lines == ("41 Esplanade", "Cairns QLD 4870", "Australia")
    assert found.role in ("administrative", "technical")


def test_lacnic_and_afrinic_shapes():
    assert rdap("lacnic-ip-179.231.40.0-22.json").lines[-1] == "CO"
    assert rdap("afrinic-ip-41.147.112.0-21.json").lines == (
        "Mombasa Road, Block C", "Nairobi", "Kenya")


def test_ripe_and_an_answer_without_any_adr():
    assert rdap("ripe-ip-82.44.76.0-22.json").lines == (
        "Havenstraat 118", "1013 AB", "Amsterdam", "NETHERLANDS")
    doc = {"entities": [{"roles": ["abuse"], "vcardArray": ["vcard", [
        ["email", {}, "text", "abuse@x.example"]]]}]}
    assert from_rdap(doc) is None


def test_structured_adr_parts_when_there_is_no_label():
    doc = {"entities": [{"roles": ["registrant"], "vcardArray": ["vcard", [
        ["adr", {}, "text", ["", "", "Calle 93 # 11-27", "Bogota", "DC", "110221", "CO"]]]]}]}
    assert from_rdap(doc).lines == ("Calle 93 # 11-27", "Bogota DC 110221", "CO")


def test_arin_whois_organisation():
    found = whois("arin-99.232.0.0-17.txt")
    assert found.lines == ("4100 Pier Avenue", "Suite 300", "Norfolk VA 23510", "US")
    assert found.role == "registrant"


@pytest.mark.parametrize("name", ["apnic-220.201.144.0-21.txt", "afrinic-41.147.112.0-21.txt",
                                  "afrinic-102.117.120.0-21-no-email.txt"])
def test_rir_whois_address_lines(name):
    found = whois(name)
    assert found is not None and len(found.lines) >= 2 and found.source == "whois"


@pytest.mark.parametrize("doc", [
    {"entities": [{"roles": ["registrant"], "vcardArray": ["vcard", [["adr", {"label": 7},
                                                                      "text", None]]]}]},
    {"entities": [{"roles": "registrant", "vcardArray": "junk"}]},
    {"entities": [{"vcardArray": ["vcard", [["adr", {}, "text", [["a", "b"], 5, None]]]]}]},
])
def test_hostile_vcards_never_raise(doc):
    found = from_rdap(doc)
    assert found is None or all(isinstance(line, str) for line in found.lines)
