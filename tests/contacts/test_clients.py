"""RDAP and WHOIS clients against real servers on loopback that answer like the RIRs."""

import pytest

from probes.contacts import rdap, whois
from probes.contacts.clients import (
    FAILED,
    FOUND,
    NO_CONTACT,
    ContactLookup,
    QueryCounter,
    RateLimiter,
    RdapClient,
    WhoisClient,
)
from probes.contacts.records import HIGH, LOW
from tests.contacts.fakes import RDAP_DIR, Reply, endless_answer, silent_answer


@pytest.fixture
def rdap_client(loopback, bootstrap):
    client = RdapClient(bootstrap, timeout=1.0, counter=QueryCounter())
    yield client
    client.close()


def whois_client(fake, start="iana", **kwargs):
    server = whois.parse_server(fake.addr(start))
    return WhoisClient(server, timeout=1.0, counter=QueryCounter(), **kwargs)


@pytest.mark.parametrize(
    ("ip", "email"),
    [
        ("82.44.79.141", "abuse@kestrel-fibre.example"),
        ("2a0b:7a5:fe7f:fe21:ec7b:7856:700d:926f", "abuse@kestrel-fibre.example"),
        ("99.232.84.14", "abuse@harborline-comms.example"),
        ("97.2.221.112", "abuse@pinecrest-wireless.example"),
        ("220.201.147.150", "abuse@southern-reef.example"),
        ("179.231.41.242", "abuse@conectividad-andina.example"),
    ],
)
def test_rdap_finds_the_abuse_address_at_each_registry(rdap_client, rdap_fake, ip, email):
    answer = rdap_client.lookup(ip)
    assert answer.best().email == email
    assert answer.network.contains(ip)
    assert rdap_client.counter.rdap == 1
    assert '"objectClassName"' in answer.raw


def test_rdap_follows_arins_redirect_to_apnic(rdap_client, rdap_fake):
    assert rdap_fake.routes["/arin/ip/220.201.147.150"].status == 301
    # Start at ARIN, as a client with stale bootstrap data would.
    rdap_client.bootstrap = rdap.Bootstrap([{"services": [
        [["220.0.0.0/8"], [rdap_fake.base("arin")]],
        [["1.0.0.0/8"], [rdap_fake.base("apnic")]],
    ]}])
    answer = rdap_client.lookup("220.201.147.150")
    assert answer.best().email == "abuse@southern-reef.example"
    assert rdap_fake.requests == ["/arin/ip/220.201.147.150", "/apnic/ip/220.201.147.150"]
    assert rdap_client.counter.rdap == 2


def test_rdap_refuses_a_redirect_to_a_server_the_bootstrap_does_not_list(rdap_client, rdap_fake):
    rdap_fake.routes["/ripe/ip/82.44.79.141"] = Reply(
        302, headers={"Location": "http://127.0.0.1:9/evil/ip/82.44.79.141"}
    )
    with pytest.raises(rdap.RdapError, match="not a known RDAP server") as info:
        rdap_client.lookup("82.44.79.141")
    assert info.value.permanent


def test_rdap_detects_a_redirect_loop(rdap_client, rdap_fake):
    a, b = rdap_fake.base("ripe") + "ip/82.44.79.141", rdap_fake.base("ripe") + "x/82.44.79.141"
    rdap_fake.routes["/ripe/ip/82.44.79.141"] = Reply(307, headers={"Location": b})
    rdap_fake.routes["/ripe/x/82.44.79.141"] = Reply(307, headers={"Location": a})
    with pytest.raises(rdap.RdapError, match="redirect loop"):
        rdap_client.lookup("82.44.79.141")


def test_a_429_backs_off_and_sends_nothing_more_to_that_registry(rdap_client, rdap_fake):
    with pytest.raises(rdap.RdapError) as info:
        rdap_client.lookup("195.93.125.59")
    assert info.value.rate_limited and not info.value.permanent
    assert "429" in str(info.value) and "backing off" in str(info.value)
    with pytest.raises(rdap.RdapError, match="back off"):
        rdap_client.lookup("82.44.79.141")
    assert rdap_fake.count("/ripe/") == 1
    # Other registries are unaffected.
    assert rdap_client.lookup("99.232.84.14").best().email == "abuse@harborline-comms.example"


def test_retry_after_sets_the_backoff():
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert limiter.penalise("r", retry_after=120) == 120
    assert limiter.blocked_for("r") == 120
    now[0] += 121
    assert limiter.blocked_for("r") == 0
    assert limiter.penalise("r") == 60  # second strike doubles


def test_the_steady_pace_spaces_queries_per_registry():
    now = [0.0]
    slept = []
    limiter = RateLimiter(per_second=4, clock=lambda: now[0], sleep=slept.append)
    for _ in range(3):
        limiter.acquire("a")
    limiter.acquire("b")
    assert slept == [0.25, 0.5]


def test_a_404_is_a_permanent_miss(rdap_client):
    with pytest.raises(rdap.RdapError, match="HTTP 404") as info:
        rdap_client.lookup("126.95.227.129")
    assert info.value.permanent


def test_a_body_cut_short_is_a_temporary_failure_not_a_partial_address(rdap_client, rdap_fake):
    body = (RDAP_DIR / "ripe-ip-82.44.76.0-22.json").read_bytes()
    rdap_fake.routes["/ripe/ip/82.44.79.141"] = Reply(200, body, cut_at=3722)
    with pytest.raises(rdap.RdapError) as info:
        rdap_client.lookup("82.44.79.141")
    assert not info.value.permanent


def test_malformed_json_is_a_clear_error(rdap_client, rdap_fake):
    rdap_fake.routes["/ripe/ip/82.44.79.141"] = Reply(
        200, (RDAP_DIR / "malformed-truncated.json").read_bytes()
    )
    with pytest.raises(rdap.RdapError, match="malformed JSON"):
        rdap_client.lookup("82.44.79.141")


def test_an_oversized_body_is_cut_off(loopback, bootstrap, rdap_fake):
    rdap_fake.routes["/ripe/ip/82.44.79.141"] = Reply(200, b"[" + b"0," * 600_000 + b"0]")
    client = RdapClient(bootstrap, timeout=1.0, max_bytes=100_000)
    with pytest.raises(rdap.RdapError, match="over 100000 bytes"):
        client.lookup("82.44.79.141")
    client.close()


def test_a_server_error_is_temporary(rdap_client, rdap_fake):
    rdap_fake.routes["/ripe/ip/82.44.79.141"] = Reply(503, b"down")
    with pytest.raises(rdap.RdapError, match="HTTP 503") as info:
        rdap_client.lookup("82.44.79.141")
    assert not info.value.permanent


def test_rdap_refuses_servers_outside_the_allowed_networks(settings, bootstrap, rdap_fake):
    settings.PROBE_ALLOWED_NETWORKS = []
    client = RdapClient(bootstrap, timeout=1.0)
    with pytest.raises(rdap.RdapError, match="refusing to connect") as info:
        client.lookup("82.44.79.141")
    assert info.value.permanent
    assert rdap_fake.requests == []
    client.close()


# --- WHOIS ---------------------------------------------------------------------------------


def test_whois_follows_the_iana_referral_to_lacnic(loopback, whois_fake):
    client = whois_client(whois_fake)
    answer, chain = client.lookup("179.231.41.242")
    assert answer.best().email == "abuse@conectividad-andina.example"
    assert chain == [whois_fake.addr("iana"), whois_fake.addr("lacnic")]
    assert whois_fake.queries == [("iana", "179.231.41.242"), ("lacnic", "179.231.41.242")]
    assert client.counter.whois == 2


def test_whois_remembers_ianas_referral_for_the_whole_block(loopback, whois_fake):
    whois_fake.serve_file("lacnic", "179.231.40.9", "lacnic-179.231.40.0-22.txt")
    client = whois_client(whois_fake)
    client.lookup("179.231.41.242")
    client.lookup("179.231.40.9")
    assert whois_fake.count("iana") == 1
    assert whois_fake.count("lacnic") == 2


def test_whois_follows_arins_referral_server_and_ignores_lacnics_own_pocs(loopback, whois_fake):
    client = whois_client(whois_fake, start="arin")
    answer, chain = client.lookup("179.231.41.242")
    assert answer.best().email == "abuse@conectividad-andina.example"
    assert whois_fake.queries[0] == ("arin", "179.231.41.242")
    assert chain[-1] == whois_fake.addr("lacnic")


def test_whois_reads_latin1_answers(loopback, whois_fake):
    whois_fake.answers["iana"]["201.88.167.146"] = whois_fake.answers["iana"]["179.231.41.242"]
    answer, _ = whois_client(whois_fake).lookup("201.88.167.146")
    assert answer.best().email == "redes@cotelanelo.example"
    assert "Añelo" in answer.network.organisation


@pytest.mark.parametrize(
    ("registry", "query", "filename"),
    [
        ("ripe", "195.93.125.59", "ripe-error-201-access-denied.txt"),
        ("apnic", "220.201.147.150", "apnic-error-201-access-control-limit.txt"),
    ],
)
def test_access_denied_is_a_temporary_failure_that_backs_off(
    loopback, whois_fake, registry, query, filename
):
    whois_fake.serve_file(registry, query, filename)
    client = whois_client(whois_fake, start=registry)
    with pytest.raises(whois.WhoisError) as info:
        client.lookup(query)
    assert info.value.rate_limited and not info.value.permanent
    with pytest.raises(whois.WhoisError, match="back off"):
        client.lookup(query)
    assert whois_fake.count(registry) == 1


def test_an_endless_answer_stops_at_the_byte_limit(loopback, whois_fake):
    whois_fake.answers["ripe"]["198.51.100.7"] = endless_answer
    client = whois_client(whois_fake, start="ripe", max_bytes=50_000)
    with pytest.raises(whois.WhoisError, match="over 50000 bytes") as info:
        client.lookup("198.51.100.7")
    assert not info.value.permanent


def test_a_silent_server_times_out(loopback, whois_fake):
    whois_fake.answers["ripe"]["198.51.100.8"] = silent_answer
    client = whois_client(whois_fake, start="ripe")
    with pytest.raises(whois.WhoisError, match="timed out") as info:
        client.lookup("198.51.100.8")
    assert not info.value.permanent


def test_a_referral_to_a_forbidden_address_is_not_followed(loopback, whois_fake):
    whois_fake.answers["iana"]["179.231.41.242"] = b"refer: 10.1.2.3:43\n"
    with pytest.raises(whois.WhoisError, match="refusing to connect") as info:
        whois_client(whois_fake).lookup("179.231.41.242")
    assert info.value.permanent
    assert whois_fake.count("lacnic") == 0


# --- the combined policy -------------------------------------------------------------------


def lookup_for(bootstrap, whois_fake):
    counter = QueryCounter()
    limiter = RateLimiter()
    return ContactLookup(
        RdapClient(bootstrap, timeout=1.0, limiter=limiter, counter=counter),
        WhoisClient(whois.parse_server(whois_fake.addr("iana")), timeout=1.0, limiter=limiter,
                    counter=counter),
        counter,
    )


def test_an_rdap_abuse_role_needs_no_whois(loopback, bootstrap, rdap_fake, whois_fake):
    lookup = lookup_for(bootstrap, whois_fake)
    result = lookup.resolve("82.44.79.141")
    assert result.status == FOUND and result.answer.source == "rdap"
    assert whois_fake.count() == 0
    assert lookup.counter.total == 1


def test_without_an_rdap_abuse_role_whois_supplies_it(loopback, bootstrap, rdap_fake, whois_fake):
    lookup = lookup_for(bootstrap, whois_fake)
    result = lookup.resolve("41.147.116.184")
    assert result.status == FOUND
    assert (result.answer.source, result.answer.best().email) == (
        "whois", "abuse@savannalink.example")
    assert result.network.cidrs == ["41.147.112.0/21"]  # RDAP's range is kept
    assert lookup.counter.total == 3  # RDAP + IANA + AFRINIC


def test_when_whois_has_nothing_better_the_rdap_fallback_is_used_with_low_confidence(
    loopback, bootstrap, rdap_fake, whois_fake
):
    result = lookup_for(bootstrap, whois_fake).resolve("106.106.231.104")
    assert result.status == FOUND
    assert (result.answer.best().email, result.answer.best().confidence) == (
        "netops@kauripoint.example", LOW)


def test_when_rdap_fails_whois_answers(loopback, bootstrap, rdap_fake, whois_fake):
    rdap_fake.routes["/lacnic/ip/179.231.41.242"] = Reply(503, b"")
    result = lookup_for(bootstrap, whois_fake).resolve("179.231.41.242")
    assert result.status == FOUND
    assert result.answer.best().confidence == HIGH
    assert "HTTP 503" in result.error


def test_when_every_registry_is_down_the_result_is_a_temporary_failure(
    loopback, bootstrap, rdap_fake, whois_fake
):
    rdap_fake.routes["/ripe/ip/82.44.79.141"] = Reply(503, b"")
    whois_fake.stop()
    result = lookup_for(bootstrap, whois_fake).resolve("82.44.79.141")
    assert result.status == FAILED
    assert "RDAP" in result.error and "WHOIS" in result.error


def test_a_network_without_any_address_is_a_definitive_no_contact(
    loopback, bootstrap, rdap_fake, whois_fake
):
    whois_fake.answers["iana"]["102.117.125.48"] = whois_fake.answers["iana"]["41.147.116.184"]
    result = lookup_for(bootstrap, whois_fake).resolve("102.117.125.48")
    assert result.status == NO_CONTACT
    assert result.network.country == "UG"
