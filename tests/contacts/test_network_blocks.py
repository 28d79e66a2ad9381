"""The network cache finds "which stored answer holds this address" with PostgreSQL's own
network types: a `cidr` block under a GiST index, refined by the registry's exact bounds."""

import ipaddress
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.contacts.models import NetworkRecord, covering_network
from probes.contacts.resolving import _NetworkCache

pytestmark = pytest.mark.django_db


def stored(start: str, end: str, *, name: str, days: int = 30) -> NetworkRecord:
    return NetworkRecord.objects.create(
        network=covering_network(start, end), start_address=start, end_address=end, name=name,
        expires_at=timezone.now() + timedelta(days=days))


def test_the_most_specific_live_answer_holds_the_address():
    stored("82.0.0.0", "82.255.255.255", name="whole /8")
    stored("82.44.0.0", "82.44.255.255", name="the ISP's /16")
    stored("82.44.77.0", "82.44.77.255", name="customer /24", days=-1)  # expired
    cache = _NetworkCache()
    assert cache.find("82.44.77.9").name == "the ISP's /16"
    assert _NetworkCache().find("82.7.0.1").name == "whole /8"
    assert _NetworkCache().find("83.0.0.1") is None


def test_a_range_that_is_not_one_block_holds_only_its_own_addresses():
    # ARIN hands out start-end ranges: 192.0.2.10 - 192.0.2.200 is no CIDR block.
    stored("192.0.2.10", "192.0.2.200", name="odd range")
    record = NetworkRecord.objects.get()
    assert record.network == "192.0.2.0/24"
    assert _NetworkCache().find("192.0.2.10").name == "odd range"
    assert _NetworkCache().find("192.0.2.200").name == "odd range"
    assert _NetworkCache().find("192.0.2.9") is None  # inside the block, outside the range
    assert _NetworkCache().find("192.0.2.201") is None


def test_ipv6_and_ipv4_answers_never_mix():
    stored("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", name="v6 /32")
    stored("0.0.0.0", "255.255.255.255", name="all of v4")
    assert _NetworkCache().find("2001:db8::25").name == "v6 /32"
    assert _NetworkCache().find("::ffff:1.2.3.4") is None  # v4-mapped is an IPv6 address
    assert _NetworkCache().find("1.2.3.4").name == "all of v4"


def test_the_last_answer_used_serves_its_neighbours_without_a_query(django_assert_num_queries):
    stored("82.44.0.0", "82.44.255.255", name="the ISP's /16")
    cache = _NetworkCache()
    cache.find("82.44.1.1")
    with django_assert_num_queries(0):
        assert cache.find("82.44.200.3").name == "the ISP's /16"
    with django_assert_num_queries(1):
        assert cache.find("82.45.0.1") is None


def test_the_look_up_is_served_by_the_gist_index():
    for n in range(1, 250):
        stored(f"{n}.0.0.0", f"{n}.0.255.255", name=f"net {n}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE probes_networkrecord")
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = (NetworkRecord.objects.filter(network__covers="7.0.1.1")
                       .query.sql_with_params())
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "probes_network_gist" in plan


addresses_v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
addresses_v6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.tuples(addresses_v4, addresses_v4), st.tuples(addresses_v6, addresses_v6)))
def test_covering_network_is_postgresqls_inet_merge(pair):
    start, end = sorted(pair)
    with connection.cursor() as cursor:
        cursor.execute("SELECT inet_merge(%s::inet, %s::inet)::text", [str(start), str(end)])
        expected = cursor.fetchone()[0]
    block = covering_network(str(start), str(end))
    assert block == str(ipaddress.ip_network(expected))
    assert start in ipaddress.ip_network(block) and end in ipaddress.ip_network(block)


def test_covering_network_refuses_mixed_versions():
    with pytest.raises(ValueError, match="not of one IP version"):
        covering_network("192.0.2.1", "2001:db8::1")
