import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.contacts import whois
from probes.contacts.records import HIGH, clean_email
from tests.conftest import examples
from tests.contacts.fakes import WHOIS_DIR


def answer_of(name: str):
    return whois.parse(whois.decode((WHOIS_DIR / name).read_bytes()))


@pytest.mark.parametrize(
    ("name", "ip", "email"),
    [
        ("ripe-82.44.76.0-22.txt", "82.44.79.141", "abuse@kestrel-fibre.example"),
        ("arin-99.232.0.0-17.txt", "99.232.84.14", "abuse@harborline-comms.example"),
        ("apnic-220.201.144.0-21.txt", "220.201.147.150", "abuse@southern-reef.example"),
        ("lacnic-179.231.40.0-22.txt", "179.231.41.242", "abuse@conectividad-andina.example"),
        ("lacnic-201.88.160.0-20-latin1.txt", "201.88.167.146", "redes@cotelanelo.example"),
        ("afrinic-41.147.112.0-21.txt", "41.147.116.184", "abuse@savannalink.example"),
    ],
)
def test_it_finds_each_registrys_abuse_address(name, ip, email):
    result = whois.extract(answer_of(name), ip=ip)
    best = result.best()
    assert (best.email, best.confidence) == (email, HIGH)
    assert result.network.contains(ip)


def test_it_resolves_abuse_c_to_the_role_object_with_its_handle():
    result = whois.extract(answer_of("lacnic-179.231.40.0-22.txt"), ip="179.231.41.242")
    assert result.best().handle == "ABC37"
    assert result.network.country == "CO"
    assert result.network.organisation == "Conectividad Andina S.A.S."


def test_it_keeps_latin1_text_intact():
    result = whois.extract(answer_of("lacnic-201.88.160.0-20-latin1.txt"), ip="201.88.167.146")
    assert result.network.organisation == "Cooperativa Telefónica de Villa Añelo Ltda."
    assert result.network.cidrs == ["201.88.160.0/20"]


def test_an_answer_without_any_address_yields_no_candidate():
    result = whois.extract(answer_of("afrinic-102.117.120.0-21-no-email.txt"), ip="102.117.125.48")
    assert result.candidates == []
    assert result.network.country == "UG"


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("iana-179.231.41.242.txt", ("whois.lacnic.net", 43)),
        ("iana-41.147.116.184.txt", ("whois.afrinic.net", 43)),
        ("arin-referral-179.231.41.242.txt", ("whois.lacnic.net", 43)),
    ],
)
def test_it_reads_iana_and_arin_referrals(name, target):
    assert answer_of(name).referral == target


def test_arins_network_and_organisation_are_read():
    net = whois.extract(answer_of("arin-99.232.0.0-17.txt"), ip="99.232.84.14").network
    assert (net.start, net.end, net.cidrs) == ("99.232.0.0", "99.232.127.255", ["99.232.0.0/17"])
    assert (net.name, net.handle, net.country) == ("HARBORLINE-99-232", "NET-99-232-0-0-1", "US")
    assert net.organisation == "Harborline Communications, LLC"


@pytest.mark.parametrize(
    "name", ["ripe-error-201-access-denied.txt", "apnic-error-201-access-control-limit.txt"]
)
def test_a_refusal_or_a_cut_answer_is_a_temporary_failure_even_with_an_abuse_line(name):
    answer = answer_of(name)
    assert answer.rate_limited
    with pytest.raises(whois.WhoisError) as info:
        whois.extract(answer, ip="220.201.147.150")
    assert info.value.permanent is False
    assert "refused" in str(info.value)


def test_no_entries_found_is_permanent():
    with pytest.raises(whois.WhoisError) as info:
        whois.extract(whois.parse("%ERROR:101: no entries found\n"), ip="192.0.2.1")
    assert info.value.permanent is True


def test_continuation_lines_join_their_attribute():
    answer = whois.parse("route: 1.0.0.0/24\ndescr: First\n        second\n+third\n")
    assert answer.blocks == [[("route", "1.0.0.0/24"), ("descr", "First second third")]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("whois.lacnic.net", ("whois.lacnic.net", 43)),
        ("whois://whois.lacnic.net", ("whois.lacnic.net", 43)),
        ("whois://WHOIS.Example.net:4343/", ("whois.example.net", 4343)),
        ("127.0.0.1:4343", ("127.0.0.1", 4343)),
        ("[::1]:4343", ("::1", 4343)),
        ("rwhois://rwhois.example.net:4321", None),
        ("host:99999", None),
        ("bad host", None),
        ("", None),
    ],
)
def test_referral_servers_name_host_and_port(value, expected):
    assert whois.parse_server(value) == expected


def test_arin_is_asked_for_the_network_with_its_pocs():
    assert whois.query_for("whois.arin.net", "99.232.84.14") == "n + 99.232.84.14"
    assert whois.query_for("whois.ripe.net", "82.44.79.141") == "82.44.79.141"


def test_undecodable_bytes_fall_back_to_latin1():
    assert whois.decode(b"owner: Telef\xf3nica\n") == "owner: Telefónica\n"
    assert whois.decode("owner: Telefónica\n".encode()) == "owner: Telefónica\n"


@pytest.mark.fuzz
@settings(max_examples=examples(500))
@given(st.binary(max_size=4000))
def test_the_whois_parser_never_crashes_on_arbitrary_bytes(data):
    answer = whois.parse(whois.decode(data))
    try:
        result = whois.extract(answer, ip="192.0.2.1")
    except whois.WhoisError:
        return
    for candidate in result.candidates:
        assert clean_email(candidate.email) == candidate.email


whois_lines = st.lists(
    st.one_of(
        st.sampled_from(["", "% Abuse contact for 'x' is 'a@b.example'", "%ERROR:201: x",
                         "inetnum: 192.0.2.0 - 192.0.2.255", "abuse-c: H1", "nic-hdl: H1",
                         "abuse-mailbox: abuse@x.example", "e-mail: not an address",
                         "refer: whois.example.net", "ReferralServer: rwhois://x:1",
                         "OrgAbuseEmail: @@", "   continuation", "+", "CIDR: 192.0.2.0/33"]),
        st.text(max_size=60),
    ),
    max_size=60,
)


@pytest.mark.fuzz
@settings(max_examples=examples(300))
@given(whois_lines)
def test_the_whois_parser_never_crashes_on_registry_like_lines(lines):
    answer = whois.parse("\n".join(lines))
    try:
        whois.extract(answer, ip="192.0.2.7")
    except whois.WhoisError:
        pass
