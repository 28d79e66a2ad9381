"""Probe runs end to end: hosts in PostgreSQL, fakes on loopback, states by the lifecycle."""

import asyncio

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from campaign import kinds, states
from campaign.models import AuditEvent, Feed, FeedImport, Host, Sighting
from probes.tasks import reprobe_due_task, run_probe_run_task
from probes.verification import engine, selectors, services
from probes.verification.base import ProbeConfig
from probes.verification.models import ProbeResult, ProbeRun
from tests.probes import fakes

pytestmark = pytest.mark.django_db


def add_host(campaign, ip, *, kind=kinds.RELAY, ports=(), tag="", state=states.IMPORTED):
    host = Host.objects.create(campaign=campaign, ip=ip, kinds=kind, state=state)
    feed, _ = Feed.objects.get_or_create(name="test feed")
    feed_import, _ = FeedImport.objects.get_or_create(
        campaign=campaign, feed=feed, source="test", defaults={"kind": kind}
    )
    for line_no, port in enumerate(ports, 1):
        Sighting.objects.create(host=host, feed_import=feed_import, line_no=line_no,
                                seen_at=timezone.now(), port=port, kind=kind, tag=tag)
    return host


def state_of(host):
    host.refresh_from_db()
    return host.state


def test_a_run_moves_each_host_by_its_overall_verdict(campaign, fake, probe_settings, closed_port):
    open_relay = fake(fakes.smtp_server, host="127.0.0.21", rcpt=fakes.relay_everything)
    closed_relay = fake(fakes.smtp_server, host="127.0.0.22", rcpt=fakes.relay_nothing)
    closed_again = fake(fakes.smtp_server, host="127.0.0.24", rcpt=fakes.relay_nothing)
    still_open = fake(fakes.smtp_server, host="127.0.0.25", rcpt=fakes.relay_everything)
    a = add_host(campaign, "127.0.0.21", ports=[open_relay.port])
    b = add_host(campaign, "127.0.0.22", ports=[closed_relay.port])
    c = add_host(campaign, "127.0.0.23", kind=kinds.PROXY, ports=[closed_port], tag="http")
    d = add_host(campaign, "127.0.0.24", ports=[closed_again.port], state=states.NOTIFIED)
    e = add_host(campaign, "127.0.0.25", ports=[still_open.port], state=states.NOTIFIED)

    run = services.run_probe_run(services.create_probe_run(campaign))

    assert run.status == ProbeRun.DONE
    assert (run.total, run.done) == (5, 5)
    assert run.by_verdict == {"open": 2, "not_open": 2, "unreachable": 1, "error": 0}
    assert state_of(a) == states.VERIFIED_OPEN
    assert state_of(b) == states.NOT_OPEN
    assert state_of(c) == states.UNREACHABLE
    assert state_of(d) == states.REMEDIATED
    assert state_of(e) == states.NOTIFIED  # still open: stays notified for a second notice
    evidence = ProbeResult.objects.get(host=a)
    assert (evidence.check_name, evidence.port, evidence.verdict, evidence.variant) == (
        "smtp_relay", open_relay.port, "open", "plain")
    assert "RCPT TO:" in evidence.transcript and evidence.duration_ms > 0
    moved = AuditEvent.objects.filter(action="host.transition", object_id=str(a.pk)).get()
    assert moved.data["reason"] == "probe" and moved.data["run"] == run.pk
    # A probed proxy port that refuses connections is recorded for every planned check.
    assert set(ProbeResult.objects.filter(host=c).values_list("check_name", "verdict")) == {
        ("http_proxy", "unreachable")}


def test_results_are_history_and_selectors_show_the_latest(campaign, fake, probe_settings):
    server = fake(fakes.smtp_server, host="127.0.0.31", rcpt=fakes.relay_everything)
    host = add_host(campaign, "127.0.0.31", ports=[server.port])
    services.run_probe_run(services.create_probe_run(campaign))
    server.options["rcpt"] = fakes.relay_nothing
    services.run_probe_run(services.create_probe_run(campaign))

    assert ProbeResult.objects.filter(host=host).count() == 2
    assert selectors.host_probes(host) == [
        {"check": "smtp_relay", "port": server.port, "verdict": "not_open", "variant": ""}]
    assert selectors.probe_counts(campaign) == {
        "by_verdict": {"open": 0, "not_open": 1, "unreachable": 0, "error": 0}}
    assert state_of(host) == states.NOT_OPEN


@pytest.mark.parametrize("ip", ["10.9.8.7", "192.0.2.5", "169.254.1.1"])
def test_a_target_outside_the_allowlist_is_refused_without_any_connection(
    campaign, probe_settings, connections, ip
):
    host = add_host(campaign, ip, ports=[25])
    run = services.run_probe_run(services.create_probe_run(campaign))
    assert connections == []
    result = ProbeResult.objects.get(host=host)
    assert result.verdict == "error" and "refusing to connect" in result.error
    assert state_of(host) == states.IMPORTED
    assert run.error_count == 1


def test_loopback_itself_is_refused_without_the_test_allowlist(campaign, settings, connections):
    settings.PROBE_ALLOWED_NETWORKS = []
    host = add_host(campaign, "127.0.0.1", ports=[25])
    services.run_probe_run(services.create_probe_run(campaign))
    assert connections == []
    assert ProbeResult.objects.get(host=host).verdict == "error"


def test_a_chunk_delivered_twice_probes_and_counts_each_host_once(campaign, fake, probe_settings):
    server = fake(fakes.smtp_server, host="127.0.0.41", rcpt=fakes.relay_nothing)
    add_host(campaign, "127.0.0.41", ports=[server.port])
    run = services.create_probe_run(campaign)
    services.mark_running(run)
    assert services.probe_chunk(run, run.host_ids) == 1
    assert services.probe_chunk(run, run.host_ids) == 0
    run.refresh_from_db()
    assert run.done == 1 and run.results.count() == 1
    assert len(server.sessions) >= 1
    sessions = len(server.sessions)
    services.probe_chunk(run, run.host_ids)
    assert len(server.sessions) == sessions


def test_the_celery_task_splits_a_run_into_chunks(campaign, fake, probe_settings):
    probe_settings.PROBE_CHUNK_SIZE = 1
    for ip in ("127.0.0.51", "127.0.0.52", "127.0.0.53"):
        server = fake(fakes.smtp_server, host=ip, rcpt=fakes.relay_everything)
        add_host(campaign, ip, ports=[server.port])
    run = services.create_probe_run(campaign)
    assert run_probe_run_task(run.pk) == 3
    run.refresh_from_db()
    assert run.status == ProbeRun.DONE and run.done == 3 and run.open_count == 3
    assert run_probe_run_task(run.pk) == 0  # redelivered after finishing: nothing to do


def test_task_arguments_survive_json(campaign, probe_settings):
    import json

    run = services.create_probe_run(campaign)
    assert json.loads(json.dumps([run.pk, services.chunks(run)])) == [run.pk, services.chunks(run)]


def test_beat_reprobes_hosts_whose_last_probe_is_older_than_the_interval(
    campaign, fake, probe_settings, django_capture_on_commit_callbacks
):
    server = fake(fakes.smtp_server, host="127.0.0.61", rcpt=fakes.relay_everything)
    stale = add_host(campaign, "127.0.0.61", ports=[server.port])
    fresh = add_host(campaign, "127.0.0.62", ports=[server.port])
    imported = add_host(campaign, "127.0.0.63", ports=[server.port])
    services.run_probe_run(services.create_probe_run(campaign, host_ids=[stale.pk, fresh.pk]))
    old = timezone.now() - timezone.timedelta(days=campaign.reprobe_interval_days + 1)
    ProbeResult.objects.filter(host=stale).update(started_at=old)

    assert services.due_hosts(campaign) == [stale.pk]
    with django_capture_on_commit_callbacks(execute=True):
        run_ids = reprobe_due_task()
    run = ProbeRun.objects.get(pk__in=run_ids)
    assert run.reason == "reprobe" and run.host_ids == [stale.pk]
    assert run.status == ProbeRun.DONE
    assert not ProbeResult.objects.filter(host=imported).exists()


def test_default_ports_are_bounded(campaign):
    relay = add_host(campaign, "203.0.113.7", kind=kinds.RELAY)
    proxy = add_host(campaign, "203.0.113.8", kind=kinds.PROXY)
    listed = add_host(campaign, "203.0.113.9", kind=kinds.PROXY, ports=[9050], tag="socks5")
    assert services.plan_for_host(relay, campaign.kinds).checks == [
        ("smtp_relay", 25), ("smtp_relay", 587)]
    assert services.plan_for_host(proxy, campaign.kinds).checks == [
        ("http_proxy", 3128), ("http_proxy", 8080), ("http_proxy", 80), ("http_proxy", 8000),
        ("http_proxy", 8888), ("socks5", 1080), ("socks4", 1080)]
    assert services.plan_for_host(listed, campaign.kinds).checks == [("socks5", 9050)]


def test_the_engine_keeps_to_the_per_network_limit(fake, probe_settings):
    servers = [fake(fakes.tarpit, host=f"127.0.3.{i}") for i in range(1, 7)]
    config = ProbeConfig(timeout=0.3, canary_domain="canary.test")
    plans = [engine.HostPlan(i, s.host, [("smtp_relay", s.port)]) for i, s in enumerate(servers)]

    async def go(per_network, concurrency):
        runner = engine.Engine(config, concurrency=concurrency, per_network=per_network)
        await runner.run(plans, lambda outcome: None)
        return runner.peak_in_flight

    assert asyncio.run(go(per_network=2, concurrency=100)) == 2
    spread = [fake(fakes.tarpit, host=f"127.0.{10 + i}.1") for i in range(6)]
    plans[:] = [engine.HostPlan(i, s.host, [("smtp_relay", s.port)]) for i, s in enumerate(spread)]
    assert asyncio.run(go(per_network=2, concurrency=3)) == 3
    assert asyncio.run(go(per_network=2, concurrency=100)) == 6


def test_probe_hosts_prints_a_line_per_check_and_a_summary(campaign, fake, probe_settings, capsys):
    server = fake(fakes.smtp_server, host="127.0.0.71", rcpt=fakes.relay_percent_hack_only)
    add_host(campaign, "127.0.0.71", ports=[server.port])
    call_command("probe_hosts", "--campaign", campaign.slug, "--state", "imported")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"127.0.0.71 smtp_relay {server.port} open percent_hack",
        "probed=1 open=1 not_open=0 unreachable=0 error=0",
    ]


def test_probe_hosts_limit_and_background(campaign, probe_settings, capsys,
                                          django_capture_on_commit_callbacks):
    add_host(campaign, "127.0.0.81", ports=[9])
    add_host(campaign, "127.0.0.82", ports=[9])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("probe_hosts", "--campaign", campaign.slug, "--limit", "1", "--background")
    run = ProbeRun.objects.get()
    assert capsys.readouterr().out.strip() == f"run={run.pk}"
    assert run.total == 1 and run.status == ProbeRun.QUEUED and len(callbacks) == 1


def test_probe_hosts_refuses_an_unknown_campaign_or_state(campaign):
    with pytest.raises(CommandError, match="no campaign"):
        call_command("probe_hosts", "--campaign", "nope")
    with pytest.raises(CommandError, match="unknown state"):
        call_command("probe_hosts", "--campaign", campaign.slug, "--state", "weird")


def test_a_person_without_run_probes_cannot_start_a_run(campaign, rita):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.create_probe_run(campaign, actor=rita)
    run = services.create_probe_run(campaign, actor=None)
    assert run.created_by is None
