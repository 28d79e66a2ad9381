"""HTTP and SOCKS proxy checks against fakes on loopback, with the real canary."""

import asyncio
from dataclasses import replace

from probes.verification import proxy
from probes.verification.base import canary_proof, run_check
from probes.verification.canary import answer
from tests.probes import fakes

CHECKS = {"http_proxy": proxy.http_proxy, "socks4": proxy.socks4, "socks5": proxy.socks5}


def probe(check, port, config, ip="127.0.0.1"):
    return asyncio.run(run_check(check, CHECKS[check], ip, port, config))


def test_the_canary_answers_a_nonce_with_a_proof_only_the_key_gives():
    reply = answer(b"k1", b"GET /t/00112233aabbccdd HTTP/1.1\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert canary_proof(b"k1", "00112233aabbccdd").encode() in reply
    assert canary_proof(b"k2", "00112233aabbccdd").encode() not in reply
    assert b"00112233aabbccdd" not in reply  # the nonce itself is never echoed
    assert answer(b"k1", b"GET /etc/passwd HTTP/1.1\r\n").startswith(b"HTTP/1.1 404")


def test_an_open_http_proxy_is_open_through_get_and_connect(fake, config, canary):
    server = fake(fakes.http_proxy_server)
    served = canary.served
    result = probe("http_proxy", server.port, config)
    assert result.verdict == "open"
    assert result.variant == "get,connect"
    assert canary.served == served + 2
    assert server.lines[0].startswith(f"GET http://{config.canary_host}:{config.canary_port}/t/")
    assert server.lines[1].startswith(f"CONNECT {config.canary_host}:{config.canary_port} ")
    assert "canary proof received" in result.transcript


def test_a_proxy_that_fakes_the_token_is_not_open(fake, config):
    server = fake(fakes.fake_token_proxy)
    result = probe("http_proxy", server.port, config)
    assert result.verdict == "not_open"
    assert "canary proof NOT in the answer" in result.transcript


def test_a_proxy_denying_access_is_not_open(fake, config):
    server = fake(fakes.http_proxy_server, deny=True)
    result = probe("http_proxy", server.port, config)
    assert result.verdict == "not_open"
    assert result.details["attempts"] == {"get": "not_open", "connect": "not_open"}


def test_a_proxy_without_a_canary_configured_is_an_error_not_a_guess(fake, config):
    server = fake(fakes.http_proxy_server)
    result = probe("http_proxy", server.port, replace(config, canary_host=""))
    assert result.verdict == "error"
    assert "canary" in result.error
    assert server.lines == []


def test_an_open_socks5_proxy_is_open(fake, config):
    server = fake(fakes.socks5_server)
    result = probe("socks5", server.port, config)
    assert result.verdict == "open"
    assert result.variant == "socks5"
    assert server.lines == [f"CONNECT {config.canary_host}:{config.canary_port}"]


def test_a_socks5_proxy_requiring_auth_is_not_open(fake, config):
    server = fake(fakes.socks5_server, auth_required=True)
    result = probe("socks5", server.port, config)
    assert result.verdict == "not_open"
    assert result.error == "authentication required"


def test_a_socks5_proxy_refusing_connect_is_not_open(fake, config):
    server = fake(fakes.socks5_server, deny=True)
    result = probe("socks5", server.port, config)
    assert result.verdict == "not_open"
    assert "not allowed by ruleset" in result.error


def test_an_open_socks4_proxy_is_open(fake, config):
    server = fake(fakes.socks4_server)
    result = probe("socks4", server.port, config)
    assert result.verdict == "open"
    assert result.variant == "socks4"


def test_a_socks4_proxy_refusing_both_forms_is_not_open(fake, config):
    server = fake(fakes.socks4_server, deny=True)
    result = probe("socks4", server.port, config)
    assert result.verdict == "not_open"
    assert result.details["attempts"] == {"socks4": "not_open", "socks4a": "not_open"}


def test_socks4a_is_tried_when_plain_socks4_is_refused(fake, config):
    server = fake(fakes.socks4_server, only_4a=True)
    result = probe("socks4", server.port, config)
    assert result.verdict == "open"
    assert result.variant == "socks4a"
    assert server.lines[0].startswith("refused ")
    # The 4a form hands the canary's name (here its address text) to the proxy to resolve.
    assert server.lines[1].startswith(f"CONNECT {config.canary_host}:{config.canary_port}")


def test_a_socks_greeting_to_a_silent_server_is_unreachable_quickly(fake, config):
    server = fake(fakes.tarpit)
    result = probe("socks5", server.port, config)
    assert result.verdict == "unreachable"
    assert result.duration_ms < (config.timeout + 1) * 1000


def test_junk_from_a_proxy_is_an_error_and_bounded(fake, config):
    server = fake(fakes.junk, blocks=256)
    result = probe("http_proxy", server.port, config)
    assert result.verdict == "error"
    assert len(result.transcript) < 20_000
