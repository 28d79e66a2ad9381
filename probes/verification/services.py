"""Probe runs: choosing hosts, probing them in chunks, storing evidence, moving host states.

The asyncio engine runs on a worker thread; this (Django) thread stores each host's results
as soon as the host is finished, so the event loop never waits on the database and the ORM is
never touched from async code.
"""

from __future__ import annotations

import hashlib
import hmac
import queue
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from campaign import kinds, states
from campaign.audit import record
from campaign.automation import record_system_step
from campaign.hosts import transition_host
from campaign.models import Campaign, Host
from campaign.roles import has_perm
from probes.verification import engine
from probes.verification.base import (
    ERROR,
    HTTP_PROXY,
    NOT_OPEN,
    OPEN,
    SMTP_RELAY,
    SOCKS4,
    SOCKS5,
    UNREACHABLE,
    ProbeConfig,
)
from probes.verification.engine import HostOutcome, HostPlan
from probes.verification.models import ProbeResult, ProbeRun

RELAY_DEFAULT_PORTS = (25, 587)
# Common proxy ports when the feed named none: HTTP proxies on the first five, SOCKS on 1080.
PROXY_DEFAULT_PORTS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (3128, (HTTP_PROXY,)),
    (8080, (HTTP_PROXY,)),
    (80, (HTTP_PROXY,)),
    (8000, (HTTP_PROXY,)),
    (8888, (HTTP_PROXY,)),
    (1080, (SOCKS5, SOCKS4)),
)
MAX_LISTED_PORTS = 8  # per kind: a host listed on 500 ports is not probed on 500 ports
# States whose hosts are re-probed when their last probe is older than the campaign's
# interval: they are on the way to a letter, which must rest on a fresh "open". Notified
# hosts are re-tested by follow-ups on their own delay.
REPROBE_STATES = (
    states.VERIFIED_OPEN, states.CONTACT_RESOLVED, states.NO_CONTACT,
    states.NOT_OPEN, states.UNREACHABLE,
)
VERDICT_TO_STATE = {
    OPEN: states.VERIFIED_OPEN,
    NOT_OPEN: states.NOT_OPEN,
    ERROR: states.NOT_OPEN,  # answered, but never showed itself open
    UNREACHABLE: states.UNREACHABLE,
}

Progress = Callable[[ProbeRun, Host, HostOutcome], None]


def canary_key() -> bytes:
    """The key canary and probes share; derived, so there is no extra secret to configure."""
    return hmac.new(settings.SECRET_KEY.encode(), b"probe-canary-v1", hashlib.sha256).digest()


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def probe_config() -> ProbeConfig:
    canary_host, canary_port = "", 0
    if settings.PROBE_CANARY_ADDR:
        canary_host, canary_port = parse_hostport(settings.PROBE_CANARY_ADDR)
    return ProbeConfig(
        timeout=float(settings.PROBE_TIMEOUT),
        canary_domain=settings.PROBE_CANARY_DOMAIN,
        canary_host=canary_host,
        canary_port=canary_port,
        canary_key=canary_key(),
    )


def _proxy_checks_for_tag(tag: str) -> tuple[str, ...]:
    tag = tag.lower()
    if "socks5" in tag:
        return (SOCKS5,)
    if "socks4" in tag:
        return (SOCKS4,)
    if "socks" in tag:
        return (SOCKS5, SOCKS4)
    if "http" in tag:
        return (HTTP_PROXY,)
    return (HTTP_PROXY, SOCKS5, SOCKS4)


def plan_for_host(host: Host, campaign_kinds: int) -> HostPlan:
    """Which checks on which ports: listed ports first, else the bounded defaults."""
    mask = (host.kinds & campaign_kinds) or host.kinds
    sightings = list(host.sightings.all())
    checks: list[tuple[str, int]] = []
    if mask & kinds.RELAY:
        ports = sorted({s.port for s in sightings if s.kind & kinds.RELAY and s.port})
        for port in ports[:MAX_LISTED_PORTS] or RELAY_DEFAULT_PORTS:
            checks.append((SMTP_RELAY, port))
    if mask & kinds.PROXY:
        listed: dict[int, tuple[str, ...]] = {}
        for s in sightings:
            if s.kind & kinds.PROXY and s.port and len(listed) < MAX_LISTED_PORTS:
                found = _proxy_checks_for_tag(s.tag)
                listed[s.port] = tuple(dict.fromkeys(listed.get(s.port, ()) + found))
        for port, names in (listed.items() if listed else PROXY_DEFAULT_PORTS):
            checks.extend((name, port) for name in names)
    return HostPlan(host_id=host.pk, ip=host.ip, checks=checks)


def select_hosts(campaign: Campaign, *, state: str | None = None, limit: int | None = None):
    qs = Host.objects.filter(campaign=campaign)
    if state:
        if state not in states.HOST_STATES:
            expected = ", ".join(states.HOST_STATES)
            raise ValueError(f"unknown state {state!r} (expected one of {expected})")
        qs = qs.filter(state=state)
    qs = qs.order_by("id").values_list("id", flat=True)
    return list(qs[:limit] if limit else qs)


def create_probe_run(
    campaign: Campaign,
    *,
    actor=None,
    state: str | None = None,
    limit: int | None = None,
    host_ids: Iterable[int] | None = None,
    reason: str = "manual",
) -> ProbeRun:
    """Create a queued run over a snapshot of the chosen hosts (`actor` needs run_probes)."""
    if actor is not None and not has_perm(actor, "run_probes"):
        raise PermissionDenied(f"{actor} may not start probe runs")
    ids = list(host_ids) if host_ids is not None else select_hosts(
        campaign, state=state, limit=limit
    )
    with transaction.atomic():
        run = ProbeRun.objects.create(
            campaign=campaign, created_by=actor if getattr(actor, "pk", None) else None,
            state_filter=state or "", host_ids=ids, total=len(ids), reason=reason,
        )
        record("probe_run.start", actor=actor, campaign_id=campaign.pk, obj=run,
               data={"hosts": len(ids), "state": state or "", "limit": limit, "reason": reason})
    return run


def chunks(run: ProbeRun, size: int | None = None) -> list[list[int]]:
    size = size or int(settings.PROBE_CHUNK_SIZE)
    ids = list(run.host_ids)
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def mark_running(run: ProbeRun) -> bool:
    """queued → running; False if the run is already finished (a redelivered task)."""
    now = timezone.now()
    ProbeRun.objects.filter(pk=run.pk, status=ProbeRun.QUEUED).update(
        status=ProbeRun.RUNNING, started_at=now
    )
    run.refresh_from_db()
    return run.status == ProbeRun.RUNNING


def run_probe_run(
    run: ProbeRun, progress: Progress | None = None, *, chunk_size: int | None = None
) -> ProbeRun:
    """Probe every host of the run in this process, chunk after chunk (the command's path;
    the workers fan the same chunks out instead, see probes.tasks)."""
    if not mark_running(run):
        return run
    try:
        for host_ids in chunks(run, chunk_size):
            probe_chunk(run, host_ids, progress)
    except Exception as exc:
        run.mark_failed(f"{type(exc).__name__}: {exc}")
        raise
    finish_run_if_complete(run)
    run.refresh_from_db()
    return run


def probe_chunk(run: ProbeRun, host_ids: list[int], progress: Progress | None = None) -> int:
    """Probe the hosts of one chunk concurrently; idempotent (hosts already done are skipped).

    Returns the number of hosts probed now.
    """
    done_ids = set(
        ProbeResult.objects.filter(run=run, host_id__in=host_ids).values_list("host_id", flat=True)
    )
    hosts = {
        h.pk: h
        for h in Host.objects.filter(pk__in=[i for i in host_ids if i not in done_ids])
        .select_related("campaign").prefetch_related("sightings")
    }
    if not hosts:
        return 0
    campaign_kinds = run.campaign.kinds
    plans = [plan_for_host(hosts[i], campaign_kinds) for i in host_ids if i in hosts]
    config = probe_config()
    finished: queue.Queue = queue.Queue()
    failure: list[BaseException] = []
    end = object()

    def loop_thread() -> None:
        try:
            engine.probe_plans(
                plans, config, on_host=finished.put,
                concurrency=int(settings.PROBE_CONCURRENCY),
                per_network=int(settings.PROBE_PER_NETWORK),
            )
        except BaseException as exc:  # re-raised on the caller's thread below
            failure.append(exc)
        finally:
            finished.put(end)

    worker = threading.Thread(target=loop_thread, name=f"probe-run-{run.pk}", daemon=True)
    worker.start()
    count = 0
    planned = {p.host_id: p for p in plans}
    while (item := finished.get()) is not end:
        host = hosts[item.host_id]
        if record_host_outcome(run, host, item, planned[item.host_id]):
            count += 1
            if progress is not None:
                progress(run, host, item)
    worker.join()
    if failure:
        raise failure[0]
    return count


def _when(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC) if timestamp else timezone.now()


def target_state(current: str, verdict: str) -> str | None:
    """Where a host goes after a probe with this overall verdict (None: it stays)."""
    if current == states.NOTIFIED:
        # Only a host seen answering and refusing counts as fixed; silence proves nothing.
        return states.REMEDIATED if verdict == NOT_OPEN else None
    target = VERDICT_TO_STATE[verdict]
    if target == states.VERIFIED_OPEN and current in (states.CONTACT_RESOLVED, states.NO_CONTACT):
        return None  # still open: it keeps its place on the way to a letter
    return target if states.can_transition(current, target) else None


def record_host_outcome(run: ProbeRun, host: Host, outcome: HostOutcome, plan: HostPlan) -> bool:
    """Store one host's results, count them, move its state: all or nothing, exactly once."""
    verdict = outcome.verdict
    with transaction.atomic():
        # Lock the host so a duplicate delivery of the same chunk cannot record it twice.
        locked = Host.objects.select_for_update().filter(pk=host.pk).first()
        if locked is None or ProbeResult.objects.filter(run=run, host=host).exists():
            return False
        if outcome.refused:
            rows = [
                # Still verdict `error` (the CLI's four verdicts), but marked: the pages show
                # a lab-only refusal as "refused: outside the lab", not as a breakage.
                ProbeResult(run=run, host=host, check_name=check, port=port, verdict=ERROR,
                            error=outcome.refused[:500], details={"refused": outcome.refused_code},
                            transcript="* not probed: " + outcome.refused)
                for check, port in plan.checks
            ]
        else:
            rows = [
                ProbeResult(
                    run=run, host=host, check_name=o.check, port=o.port, verdict=o.verdict,
                    variant=o.variant[:60], transcript=o.transcript, details=o.details,
                    error=o.error[:500], started_at=_when(o.started_at), duration_ms=o.duration_ms,
                )
                for o in outcome.outcomes
            ]
        ProbeResult.objects.bulk_create(rows)
        ProbeRun.objects.filter(pk=run.pk).update(
            done=F("done") + 1,
            checks_done=F("checks_done") + len(rows),
            **{f"{verdict}_count": F(f"{verdict}_count") + 1},
        )
        host.state = locked.state
        target = None if outcome.refused else target_state(host.state, verdict)
        if target is not None:
            transition_host(
                host, target, reason="probe",
                data={"run": run.pk, "verdict": verdict,
                      "open": [f"{o.check}:{o.port}:{o.variant}" for o in outcome.outcomes
                               if o.verdict == OPEN]},
            )
    return True


def finish_run_if_complete(run: ProbeRun) -> bool:
    remaining = Host.objects.filter(pk__in=run.host_ids).exclude(probes__run=run).exists()
    if remaining:
        return False
    return bool(
        ProbeRun.objects.filter(pk=run.pk, status__in=[ProbeRun.QUEUED, ProbeRun.RUNNING])
        .update(status=ProbeRun.DONE, finished_at=timezone.now())
    )


def due_hosts(campaign: Campaign, *, now: datetime | None = None, limit: int | None = None,
              host_states: Iterable[str] = REPROBE_STATES) -> list[int]:
    """Hosts whose last probe is older than the campaign's re-probe interval (or never)."""
    cutoff = (now or timezone.now()) - timedelta(days=campaign.reprobe_interval_days)
    qs = (
        Host.objects.filter(campaign=campaign, state__in=list(host_states))
        .annotate(last_probe=Max("probes__started_at"))
        .filter(Q(last_probe__isnull=True) | Q(last_probe__lt=cutoff))
        .order_by("last_probe", "id")
        .values_list("id", flat=True)
    )
    return list(qs[:limit] if limit else qs)


def _run_under_way(campaign: Campaign) -> bool:
    """A campaign's runs the beat starts wait for the one queued or running to end."""
    return ProbeRun.objects.filter(
        campaign=campaign, status__in=[ProbeRun.QUEUED, ProbeRun.RUNNING]).exists()


def start_due_reprobes(*, now: datetime | None = None, limit: int = 5000) -> list[ProbeRun]:
    """One re-probe run per active campaign with due hosts and no run already under way."""
    runs = []
    for campaign in Campaign.objects.filter(status=Campaign.ACTIVE):
        if _run_under_way(campaign):
            continue
        ids = due_hosts(campaign, now=now, limit=limit)
        if ids:
            runs.append(create_probe_run(campaign, host_ids=ids, reason="reprobe"))
    return runs


def start_auto_probes(*, limit: int | None = None) -> list[ProbeRun]:
    """Campaigns that probe new hosts as they arrive: one run over the hosts not yet probed,
    unless a run is already under way (the next minute's look takes what came meanwhile)."""
    limit = limit or settings.PROBE_AUTO_MAX_HOSTS
    runs = []
    for campaign in Campaign.objects.filter(status=Campaign.ACTIVE, auto_probe_new=True):
        if _run_under_way(campaign):
            continue
        # Never probed: an imported host whose probe errored (a refusal, a timeout of our
        # own) stays imported, and must not be probed again every minute.
        ids = list(Host.objects.filter(campaign=campaign, state=states.IMPORTED)
                   .filter(~Exists(ProbeResult.objects.filter(host=OuterRef("pk"))))
                   .order_by("id").values_list("id", flat=True)[:limit])
        if ids:
            run = create_probe_run(campaign, host_ids=ids, reason="auto")
            record_system_step("probe_run", campaign, obj=run, hosts=len(ids))
            runs.append(run)
    return runs

