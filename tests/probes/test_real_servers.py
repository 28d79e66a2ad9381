"""Verdicts against Debian's real postfix, tinyproxy and dante-server on loopback."""

import asyncio
import re

import pytest
from django.core.management import call_command

from campaign import kinds, states
from probes.verification import proxy, smtp
from probes.verification.base import run_check
from tests.probes.test_runs import add_host, state_of

pytestmark = pytest.mark.servers

CHECKS = {"smtp_relay": smtp.smtp_relay, "http_proxy": proxy.http_proxy,
          "socks4": proxy.socks4, "socks5": proxy.socks5}


def probe(check, listener, config):
    return asyncio.run(run_check(check, CHECKS[check], listener.host, listener.port, config))


def disconnect_lines(postfix, name):
    return [line for line in postfix.read_log().splitlines()
            if f"{name}/smtpd" in line and " disconnect from " in line]


def test_postfix_as_an_open_relay_is_open_and_gets_no_message(real_servers, config):
    postfix = real_servers.postfix
    result = probe("smtp_relay", postfix.open, config)
    assert result.verdict == "open", result.transcript
    assert result.variant == "plain"
    assert result.details["tls"]["version"].startswith("TLS")
    assert result.details["tls"]["verified"] is False
    assert "STARTTLS" in result.transcript
    lines = disconnect_lines(postfix, "postfix-open")
    assert lines and all(" rcpt=1" in line for line in lines[-1:])
    assert not any(re.search(r" (data|bdat)=", line) for line in lines)
    assert postfix.queued_files() == []


def test_postfix_closed_is_not_open_despite_accepting_any_local_part(real_servers, config):
    postfix = real_servers.postfix
    result = probe("smtp_relay", postfix.closed, config)
    assert result.verdict == "not_open", result.transcript
    tried = result.details["variants"]
    assert tried["plain"].startswith("refused: 554")
    assert tried["source_route"].startswith("refused: 554")
    assert tried["percent_hack"].startswith("refused: 554")
    # A bare local part gets postfix's own domain, and with empty local_recipient_maps any
    # local part is taken: the bare tricks would prove nothing, so they are not counted.
    assert tried["control_bare"] == "250"
    assert tried["quoted_local_bare"].startswith("skipped")
    lines = disconnect_lines(postfix, "postfix-closed")
    assert lines and not any(re.search(r" (data|bdat)=", line) for line in lines)
    assert postfix.queued_files() == []


def test_open_tinyproxy_is_open_through_get_and_connect(real_servers, config):
    result = probe("http_proxy", real_servers.tiny_open.listen, config)
    assert result.verdict == "open", result.transcript
    assert result.variant == "get,connect"


def test_restricted_tinyproxy_is_not_open(real_servers, config):
    result = probe("http_proxy", real_servers.tiny_closed.listen, config)
    assert result.verdict == "not_open", result.transcript
    assert "403" in result.transcript


def test_open_dante_is_open_for_socks5(real_servers, config):
    result = probe("socks5", real_servers.dante_open.listen, config)
    assert result.verdict == "open", result.transcript
    assert result.variant == "socks5"


def test_open_dante_is_open_for_socks4(real_servers, config):
    result = probe("socks4", real_servers.dante_open.listen, config)
    assert result.verdict == "open", result.transcript
    assert result.variant == "socks4"


def test_restricted_dante_accepts_the_greeting_but_is_not_open(real_servers, config):
    result = probe("socks5", real_servers.dante_closed.listen, config)
    assert result.verdict == "not_open", result.transcript
    assert "not allowed by ruleset" in result.error


@pytest.mark.django_db
def test_probe_hosts_gives_every_real_server_the_right_state(
    real_servers, campaign, probe_settings, capsys
):
    probe_settings.PROBE_TIMEOUT = 2.0
    s = real_servers
    hosts = {
        "open_relay": add_host(campaign, s.postfix.open.host, ports=[s.postfix.open.port]),
        "closed_relay": add_host(campaign, s.postfix.closed.host,
                                 ports=[s.postfix.closed.port]),
        "open_http": add_host(campaign, s.tiny_open.listen.host, kind=kinds.PROXY,
                              ports=[s.tiny_open.listen.port], tag="http"),
        "closed_http": add_host(campaign, s.tiny_closed.listen.host, kind=kinds.PROXY,
                                ports=[s.tiny_closed.listen.port], tag="http"),
        "open_socks": add_host(campaign, s.dante_open.listen.host, kind=kinds.PROXY,
                               ports=[s.dante_open.listen.port], tag="socks5"),
        "closed_socks": add_host(campaign, s.dante_closed.listen.host, kind=kinds.PROXY,
                                 ports=[s.dante_closed.listen.port], tag="socks5"),
    }
    call_command("probe_hosts", "--campaign", campaign.slug)
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "probed=6 open=3 not_open=3 unreachable=0 error=0"
    assert f"{s.postfix.open.host} smtp_relay {s.postfix.open.port} open plain" in out
    assert f"{s.tiny_open.listen.host} http_proxy {s.tiny_open.listen.port} open get,connect" in out
    assert f"{s.dante_closed.listen.host} socks5 {s.dante_closed.listen.port} not_open" in out
    for name, host in hosts.items():
        expected = states.VERIFIED_OPEN if name.startswith("open") else states.NOT_OPEN
        assert state_of(host) == expected, name
