"""The SMTP relay check against small fakes on loopback."""

import asyncio
import time

from probes.verification import smtp
from probes.verification.base import run_check
from tests.probes import fakes


def probe(ip, port, config):
    return asyncio.run(run_check("smtp_relay", smtp.smtp_relay, ip, port, config))


def rcpts(server):
    return [line for line in server.lines if line.upper().startswith("RCPT")]


def test_it_calls_an_accepting_server_open_and_never_sends_data(fake, config):
    server = fake(fakes.smtp_server, rcpt=fakes.relay_everything)
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "open"
    assert result.variant == "plain"
    assert not any(line.upper().startswith(("DATA", "BDAT")) for line in server.lines)
    assert server.lines[-2:] == ["RSET", "QUIT"]
    assert "RCPT TO:<sys-" in result.transcript
    assert result.details["accepted"]["recipient"].endswith("@canary.test")


def test_it_calls_a_refusing_server_not_open_after_trying_every_outside_variant(fake, config):
    server = fake(fakes.smtp_server, rcpt=fakes.relay_nothing)
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "not_open"
    assert result.variant == ""
    tried = result.details["variants"]
    for name in ("plain", "empty_sender", "ip_literal", "source_route", "percent_hack",
                 "bang_path", "quoted_local"):
        assert name in tried, name
    assert "MAIL FROM:<>" in server.lines
    assert not any(line.upper().startswith("DATA") for line in server.lines)


def test_it_finds_a_relay_that_only_accepts_the_percent_hack(fake, config):
    server = fake(fakes.smtp_server, rcpt=fakes.relay_percent_hack_only)
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "open"
    assert result.variant == "percent_hack"
    assert any("%canary.test@[127.0.0.1]" in line for line in rcpts(server))


def test_it_does_not_count_local_tricks_when_any_local_part_is_accepted(fake, config):
    server = fake(fakes.smtp_server, rcpt=fakes.accept_local_only)
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "not_open"
    assert result.details["variants"]["percent_hack"].startswith("skipped")
    assert result.details["variants"]["quoted_local_bare"].startswith("skipped")


def test_it_sends_the_source_route_verbatim(fake, config):
    server = fake(fakes.smtp_server, rcpt=fakes.accept_source_route_only)
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "open"
    assert result.variant == "source_route"
    routed = [line for line in rcpts(server) if line.startswith("RCPT TO:<@[127.0.0.1]:sys-")]
    assert routed and routed[0].endswith("@canary.test>")


def test_it_spreads_variants_over_sessions_before_postfix_would_slow_down(fake, config):
    server = fake(fakes.smtp_server, rcpt=fakes.relay_nothing, hang_up_after=10)
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "not_open"
    assert len(server.sessions) >= 2
    for session in server.sessions:
        rejected = [line for line in session if line.upper().startswith("RCPT")]
        assert len(rejected) <= smtp.REJECTS_PER_SESSION


def test_a_temporary_refusal_is_not_open(fake, config):
    server = fake(fakes.smtp_server, rcpt=fakes.temporary_failures)
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "not_open"


def test_a_5xx_banner_is_not_open(fake, config):
    server = fake(fakes.smtp_server, banner="554 5.7.1 No SMTP service here")
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "not_open"
    assert "554" in result.error
    assert not rcpts(server)


def test_a_421_banner_is_not_open(fake, config):
    server = fake(fakes.smtp_server, banner="421 4.3.2 Service not available")
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "not_open"


def test_a_banner_then_close_is_an_error(fake, config):
    server = fake(fakes.smtp_server, close_after_banner=True)
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "error"
    assert "closed" in result.error


def test_a_tarpit_is_unreachable_within_the_read_timeout(fake, config):
    server = fake(fakes.tarpit)
    start = time.monotonic()
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "unreachable"
    assert time.monotonic() - start < config.timeout + 1
    assert "timed out" in result.error


def test_a_dripping_server_is_cut_off_by_the_check_budget(fake, probe_settings):
    from dataclasses import replace

    from probes.verification.services import probe_config

    config = replace(probe_config(), timeout=0.5, check_budget=4)
    server = fake(fakes.drip, every=0.3)
    start = time.monotonic()
    result = probe("127.0.0.1", server.port, config)
    elapsed = time.monotonic() - start
    # 64 continuation lines is the reply cap: either way it ends early, never after minutes.
    assert result.verdict in ("unreachable", "error")
    assert elapsed < config.deadline + 1


def test_megabytes_of_junk_end_in_an_error_with_a_small_transcript(fake, config):
    server = fake(fakes.junk, blocks=256)  # 3.5 MB without a newline
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "error"
    assert len(result.transcript) < 20_000


def test_another_protocol_is_an_error(fake, config):
    server = fake(fakes.junk_lines)
    result = probe("127.0.0.1", server.port, config)
    assert result.verdict == "error"
    assert "not an SMTP reply" in result.error


def test_a_closed_port_is_unreachable(closed_port, config):
    result = probe("127.0.0.1", closed_port, config)
    assert result.verdict == "unreachable"
    assert result.connect_failed
