"""Which addresses count as public hosts: the policy must agree with `ipaddress` everywhere.

The fast IPv4 path of AddressPolicy.check_text skips building an `ipaddress` object for most
public addresses; these tests hold it to the module's notions, exhaustively at the edges of
every special-purpose network and randomly everywhere else.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from campaign import addresses
from campaign.addresses import AddressPolicy, AddressRejected, network_reason, parse_ip
from tests.conftest import examples


def is_public(ip: addresses.IPAddress) -> bool:
    """The README's rule for a valid host, straight from `ipaddress`."""
    return ip.is_global and not (
        ip.is_private or ip.is_reserved or ip.is_loopback or ip.is_multicast
        or ip.is_link_local or ip.is_unspecified
    )


def special_ipv4_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network `ipaddress` treats specially, plus the policy's own named ranges."""
    consts = ipaddress._IPv4Constants
    nets = {
        *consts._private_networks,
        consts._public_network,  # 100.64.0.0/10, "public" in name only: not global
        consts._reserved_network,
        consts._multicast_network,
        consts._loopback_network,
        consts._linklocal_network,
        ipaddress.ip_network("0.0.0.0/32"),
        # IANA special-purpose entries that Python's tables treat as global: the edges must
        # still agree with ipaddress (accepted) rather than with a hand list.
        ipaddress.ip_network("192.0.0.0/24"),
        ipaddress.ip_network("192.88.99.0/24"),
        ipaddress.ip_network("192.31.196.0/24"),
        ipaddress.ip_network("192.52.193.0/24"),
        ipaddress.ip_network("192.175.48.0/24"),
    }
    nets.update(net for net, _code, _text in addresses._NAMED_RANGES if net.version == 4)
    return sorted(nets)


def edge_addresses() -> list[ipaddress.IPv4Address]:
    result = set()
    for net in special_ipv4_networks():
        first, last = int(net.network_address), int(net.broadcast_address)
        for value in (first - 1, first, first + 1, (first + last) // 2, last - 1, last, last + 1):
            if 0 <= value <= 0xFFFFFFFF:
                result.add(ipaddress.IPv4Address(value))
    return sorted(result)


def policy_accepts(policy: AddressPolicy, text: str) -> bool:
    try:
        canonical = policy.check_text(text)
    except AddressRejected:
        return False
    assert canonical == str(ipaddress.ip_address(text))
    return True


EDGES = edge_addresses()


def test_the_edge_list_covers_every_special_network_of_ipaddress():
    # Guard the test itself: a shrunken list would make the next test pass vacuously.
    assert len(special_ipv4_networks()) >= 20
    assert len(EDGES) >= 100
    assert ipaddress.ip_address("100.63.255.255") in EDGES
    assert ipaddress.ip_address("100.128.0.0") in EDGES


@pytest.mark.parametrize("ip", EDGES, ids=str)
def test_the_fast_path_agrees_with_ipaddress_at_every_special_network_edge(ip):
    assert policy_accepts(AddressPolicy(), str(ip)) is is_public(ip)


@pytest.mark.fuzz
@settings(max_examples=examples(3000))
@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
@example(0x08080808)
@example(0x64400000)  # 100.64.0.0
@example(0xFFFFFFFF)
def test_the_fast_path_agrees_with_ipaddress_on_random_ipv4_addresses(value):
    ip = ipaddress.IPv4Address(value)
    assert policy_accepts(AddressPolicy(), str(ip)) is is_public(ip)


def test_every_special_network_lies_under_a_first_octet_the_fast_path_sends_to_the_slow_path():
    for net in special_ipv4_networks():
        if not is_public(net.network_address) or not is_public(net.broadcast_address):
            first = net.network_address.packed[0]
            last = net.broadcast_address.packed[0]
            for octet in range(first, last + 1):
                assert octet in addresses._SLOW_FIRST_OCTETS, (net, octet)


_ADDRESSISH = st.text(
    alphabet=st.sampled_from(list("0123456789.:abcdefx/ %") + ["\x00", "\u0661", "\uff11",
                                                                  "\u00b2", "\u200b", "\ufeff"]),
    max_size=24,
)


@pytest.mark.fuzz
@settings(max_examples=examples(1500))
@given(_ADDRESSISH)
@example("1.2.3.4\x00")
@example("8.8.8.8\x00x")
@example("08.8.8.8")
@example("8.8.8.8 ")
@example("\uff18.8.8.8")
@example("1.2.3")
@example("fe80::1%eth0")
def test_check_text_rejects_or_returns_the_canonical_form_and_never_raises_anything_else(text):
    policy = AddressPolicy()
    try:
        canonical = policy.check_text(text)
    except AddressRejected as exc:
        assert exc.code and exc.message
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return
        assert not is_public(ip) or ip.version == 6  # v6: the policy may be stricter
        return
    ip = ipaddress.ip_address(text)
    assert canonical == str(ip)
    assert is_public(ip)


@pytest.mark.fuzz
@settings(max_examples=examples(1500))
@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_an_ipv6_address_the_policy_accepts_is_public_by_ipaddress(value):
    ip = ipaddress.IPv6Address(value)
    if policy_accepts(AddressPolicy(), str(ip)):
        assert is_public(ip)


@pytest.mark.parametrize(("text", "code"), [
    ("10.1.2.3", "private"),
    ("172.31.255.255", "private"),
    ("192.168.0.9", "private"),
    ("fd12:3456::1", "private"),
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("169.254.1.1", "link_local"),
    ("fe80::1", "link_local"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("100.64.12.7", "shared"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.1", "documentation"),
    ("203.0.113.44", "documentation"),
    ("2001:db8::dead:beef", "documentation"),
    ("3fff::1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("0.1.2.3", "reserved"),
    ("::ffff:8.8.8.8", "mapped"),
    ("256.1.1.1", "invalid"),
    ("082.044.079.141", "invalid"),
    ("82.44.79", "invalid"),
    ("fe80::1%eth0", "invalid"),
    ("", "invalid"),
])
def test_it_rejects_special_purpose_and_malformed_addresses_with_a_reason(text, code):
    with pytest.raises(AddressRejected) as caught:
        AddressPolicy().check_text(text)
    assert caught.value.code == code
    assert caught.value.message


@pytest.mark.parametrize(("text", "canonical"), [
    ("82.44.79.141", "82.44.79.141"),
    ("2A0B:07A5:FE7F:FE21:EC7B:7856:700D:926F", "2a0b:7a5:fe7f:fe21:ec7b:7856:700d:926f"),
    ("2001:4860:0:0:0:0:0:8888", "2001:4860::8888"),
])
def test_it_returns_the_canonical_text_of_a_public_address(text, canonical):
    assert AddressPolicy().check_text(text) == canonical


def test_allowlisted_networks_are_accepted_although_reserved_and_nothing_else_is():
    policy = AddressPolicy(["127.0.0.0/8", " 10.9.0.0/16 ", "::1/128"])
    assert policy.check_text("127.0.0.5") == "127.0.0.5"
    assert policy.check_text("10.9.3.4") == "10.9.3.4"
    assert policy.check_text("::1") == "::1"
    with pytest.raises(AddressRejected):
        policy.check_text("10.8.0.1")
    with pytest.raises(AddressRejected):
        policy.check_text("192.168.1.1")
    # The fast path is off with an allowlist; public addresses still pass.
    assert policy.check_text("8.8.8.8") == "8.8.8.8"


def test_parse_ip_refuses_scoped_addresses():
    with pytest.raises(AddressRejected):
        parse_ip("fe80::1%25eth0")


@pytest.mark.parametrize(("cidr", "expected"), [
    ("82.44.79.141/32", None),
    ("71.97.0.0/16", None),
    ("10.0.0.0/8", "private"),
    ("224.0.0.0/3", "multicast"),
    ("100.0.0.0/8", "reserved"),  # contains 100.64.0.0/10 although neither edge is in it
    ("192.0.0.0/16", "reserved"),  # contains 192.0.2.0/24 and 192.0.0.0/29
    ("2001:db8::/32", "documentation"),
])
def test_a_network_is_refused_when_it_overlaps_special_purpose_space(cidr, expected):
    reason = network_reason(ipaddress.ip_network(cidr))
    assert (reason[0] if reason else None) == expected
