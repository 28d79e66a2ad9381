import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.contacts import rdap
from probes.contacts.records import HIGH, LOW, MEDIUM, clean_email
from tests.conftest import examples
from tests.contacts.fakes import RDAP_DIR


def parse(name: str):
    return rdap.parse_ip_network(rdap.decode_json((RDAP_DIR / name).read_bytes()))


@pytest.mark.parametrize(
    ("name", "email", "handle", "confidence"),
    [
        ("ripe-ip-82.44.76.0-22.json", "abuse@kestrel-fibre.example", "AR72214-RIPE", HIGH),
        ("ripe-ip-2a0b_7a5_fe7f__-48.json", "abuse@kestrel-fibre.example", "AR72214-RIPE", HIGH),
        ("arin-ip-99.232.0.0-17.json", "abuse@harborline-comms.example", "HCA12-ARIN", HIGH),
        ("apnic-ip-220.201.144.0-21.json", "abuse@southern-reef.example",
         "IRT-SRBROADBAND-AU", HIGH),
        ("lacnic-ip-179.231.40.0-22.json", "abuse@conectividad-andina.example", "ABC37", HIGH),
    ],
)
def test_it_finds_the_abuse_role_of_each_registry(name, email, handle, confidence):
    answer = parse(name)
    best = answer.best()
    assert (best.email, best.handle, best.confidence, best.role) == (
        email, handle, confidence, "abuse"
    )


def test_it_walks_nested_entities_to_depth_three_and_marks_an_unvalidated_poc_medium():
    answer = parse("arin-ip-97.2.192.0-19-abuse-depth3.json")
    assert [(c.email, c.confidence) for c in answer.candidates] == [
        ("abuse@pinecrest-wireless.example", MEDIUM)
    ]
    assert answer.network.organisation == "Pinecrest Regional Wireless Inc."


def test_it_lists_a_repeated_address_once():
    answer = parse("apnic-ip-220.201.144.0-21.json")
    assert [c.email for c in answer.candidates] == ["abuse@southern-reef.example"]


def test_it_falls_back_to_technical_then_administrative_then_registrant_with_low_confidence():
    answer = parse("apnic-ip-106.106.224.0-21-no-abuse.json")
    assert [(c.email, c.role, c.confidence) for c in answer.candidates] == [
        ("netops@kauripoint.example", "technical", LOW),
        ("hostmaster@kauripoint.example", "administrative", LOW),
        ("accounts@kauripoint.example", "registrant", LOW),
    ]


def test_it_ignores_addresses_in_free_text_remarks():
    # ARIN's Registration Comments and APNIC's validation remark hold addresses too.
    answer = parse("afrinic-ip-41.147.112.0-21.json")
    assert "abuse@savannalink.example" not in [c.email for c in answer.candidates]
    assert answer.best().email == "noc@savannalink.example"


def test_it_keeps_the_network_range_cidr_name_country_and_handle():
    net = parse("ripe-ip-82.44.76.0-22.json").network
    assert (net.start, net.end, net.cidrs) == ("82.44.76.0", "82.44.79.255", ["82.44.76.0/22"])
    assert (net.name, net.country, net.handle) == ("KESTREL-FTTH-AMS", "NL",
                                                   "82.44.76.0 - 82.44.79.255")
    assert net.parent_handle == "82.44.0.0 - 82.44.127.255"
    assert net.organisation == "Kestrel Fibre Networks B.V."
    v6 = parse("ripe-ip-2a0b_7a5_fe7f__-48.json").network
    assert v6.cidrs == ["2a0b:7a5:fe7f::/48"]
    assert v6.contains("2a0b:7a5:fe7f:fe21:ec7b:7856:700d:926f")


def test_it_takes_lacnics_country_from_the_registrant_address():
    net = parse("lacnic-ip-179.231.40.0-22.json").network
    assert net.country == "CO"
    assert net.handle == "179.231.40.0/22"


def test_a_truncated_body_is_an_error_and_never_a_partial_address():
    with pytest.raises(rdap.RdapError) as info:
        rdap.decode_json((RDAP_DIR / "malformed-truncated.json").read_bytes())
    assert "malformed JSON" in str(info.value)
    assert info.value.permanent is False


@pytest.mark.parametrize("name", ["error-404.json", "error-429.json"])
def test_an_error_object_is_reported_not_parsed_as_a_network(name):
    with pytest.raises(rdap.RdapError) as info:
        parse(name)
    assert "answered an error" in str(info.value)


def test_json_that_is_not_an_object_is_refused():
    for body in (b"[]", b'"x"', b"null", b"\xff\xfe"):
        with pytest.raises(rdap.RdapError):
            rdap.decode_json(body)


def test_absurdly_deep_nesting_is_bounded():
    card = ["vcard", [["email", {}, "text", "a@b.example"]]]
    entity = {"roles": ["technical"], "vcardArray": card}
    for _ in range(2000):
        entity = {"roles": ["registrant"], "entities": [entity]}
    doc = {"objectClassName": "ip network", "startAddress": "1.0.0.0", "endAddress": "1.0.0.255",
           "entities": [entity]}
    answer = rdap.parse_ip_network(doc)
    assert answer.candidates == []  # the address lies below the depth cap


def test_the_bootstrap_picks_the_longest_prefix_and_prefers_https():
    docs = [json.loads((RDAP_DIR / "bootstrap" / n).read_text())
            for n in ("ipv4.json", "ipv6.json")]
    boot = rdap.Bootstrap(docs)
    assert boot.servers_for("99.232.84.14") == ["https://rdap.arin.net/registry/"]
    assert boot.servers_for("41.147.116.184") == ["https://rdap.afrinic.net/rdap/"]
    assert boot.servers_for("2a0b:7a5:fe7f::1") == ["https://rdap.db.ripe.net/"]
    assert boot.servers_for("10.0.0.1") == []
    assert boot.is_known("https://rdap.apnic.net/ip/220.201.147.150")
    assert not boot.is_known("http://rdap.arin.net/registry/ip/1.2.3.4")  # http when https exists
    assert not boot.is_known("https://evil.example/rdap.apnic.net/")


def test_a_bootstrap_file_of_the_wrong_shape_is_refused():
    for doc in ({}, {"services": "x"}, {"services": [["1.0.0.0/8"]]},
                {"services": [[["not-a-prefix"], ["https://x.example/"]]]}):
        with pytest.raises(rdap.BootstrapError):
            rdap.Bootstrap([doc])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abuse@Example.ORG", "abuse@example.org"),
        ("mailto:abuse@example.org", "abuse@example.org"),
        ("abuse@example", None),
        ("a b@example.org", None),
        ("abuse@@example.org", None),
        ("abuse@example.org.", None),
        ("abuse@[192.0.2.1]", None),
        ('"x"@example.org', None),
        (None, None),
    ],
)
def test_only_plain_addresses_are_accepted(text, expected):
    assert clean_email(text) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(
        st.sampled_from(["entities", "roles", "vcardArray", "startAddress", "endAddress",
                         "cidr0_cidrs", "handle", "name", "country", "remarks", "errorCode",
                         "objectClassName", "v4prefix", "length", "title"]),
        children, max_size=6),
    max_leaves=40,
)


@pytest.mark.fuzz
@settings(max_examples=examples(300))
@given(json_values)
def test_the_parser_never_crashes_on_arbitrary_json(value):
    doc = value if isinstance(value, dict) else {"entities": value}
    doc.setdefault("objectClassName", "ip network")
    try:
        answer = rdap.parse_ip_network(doc)
    except rdap.RdapError:
        return
    for candidate in answer.candidates:
        assert clean_email(candidate.email) == candidate.email
