"""Runs many checks concurrently: one asyncio loop, global and per-network limits.

A host's ports are probed concurrently; the checks on one port run one after another, so
when nothing answers on a port the remaining checks there are recorded as unreachable
without knocking again. Every check holds a slot of the global limit and one of its /24
(IPv6: /64) while it runs: a campaign concentrated in one provider's network is probed
politely while the rest of the Internet keeps the other slots busy.

No Django here; `on_host` is called on the loop's thread as each host finishes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from campaign import outbound
from probes.verification import proxy, smtp
from probes.verification.base import (
    ERROR,
    HTTP_PROXY,
    SMTP_RELAY,
    SOCKS4,
    SOCKS5,
    UNREACHABLE,
    CheckFn,
    CheckOutcome,
    ProbeConfig,
    overall_verdict,
    run_check,
)

CHECK_FUNCTIONS: dict[str, CheckFn] = {
    SMTP_RELAY: smtp.smtp_relay,
    HTTP_PROXY: proxy.http_proxy,
    SOCKS4: proxy.socks4,
    SOCKS5: proxy.socks5,
}

DEFAULT_CONCURRENCY = 256
DEFAULT_PER_NETWORK = 8


@dataclass
class HostPlan:
    host_id: int
    ip: str
    checks: list[tuple[str, int]]  # (check, port), in the order they should run per port


@dataclass
class HostOutcome:
    host_id: int
    ip: str
    outcomes: list[CheckOutcome] = field(default_factory=list)
    refused: str = ""  # the address policy refused the target: nothing was sent
    refused_code: str = ""  # why, as outbound.TargetRefused's code (`lab_only`, `reserved`…)

    @property
    def verdict(self) -> str:
        """The checks' overall verdict; error if the address policy refused the target."""
        if self.refused:
            return ERROR
        return overall_verdict(o.verdict for o in self.outcomes)


def network_of(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class Engine:
    def __init__(
        self,
        config: ProbeConfig,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        per_network: int = DEFAULT_PER_NETWORK,
    ) -> None:
        self.config = config
        self.slots = asyncio.Semaphore(concurrency)
        self.per_network = per_network
        self.networks: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(self.per_network)
        )
        self.in_flight = 0
        self.peak_in_flight = 0

    async def _check(self, check: str, ip: str, port: int, net: str) -> CheckOutcome:
        async with self.slots, self.networks[net]:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                return await run_check(check, CHECK_FUNCTIONS[check], ip, port, self.config)
            finally:
                self.in_flight -= 1

    async def _port(self, ip: str, port: int, checks: list[str], net: str) -> list[CheckOutcome]:
        results: list[CheckOutcome] = []
        for check in checks:
            if results and results[-1].connect_failed:
                results.append(CheckOutcome(
                    check=check, port=port, verdict=UNREACHABLE, started_at=time.time(),
                    error=f"not attempted: {results[-1].error}", connect_failed=True,
                ))
                continue
            results.append(await self._check(check, ip, port, net))
        return results

    async def probe_host(self, plan: HostPlan) -> HostOutcome:
        result = HostOutcome(plan.host_id, plan.ip)
        try:
            outbound.check_target(plan.ip)
        except outbound.TargetRefused as exc:
            # Never connect, not even once: the caller records why.
            result.refused = str(exc)
            result.refused_code = exc.code
            return result
        net = network_of(plan.ip)
        by_port: dict[int, list[str]] = defaultdict(list)
        for check, port in plan.checks:
            by_port[port].append(check)
        per_port = await asyncio.gather(
            *(self._port(plan.ip, port, checks, net) for port, checks in by_port.items())
        )
        order = {item: index for index, item in enumerate(plan.checks)}
        result.outcomes = sorted(
            (o for outcomes in per_port for o in outcomes),
            key=lambda o: order.get((o.check, o.port), 0),
        )
        return result

    async def run(
        self, plans: Iterable[HostPlan], on_host: Callable[[HostOutcome], None]
    ) -> None:
        async def one(plan: HostPlan) -> None:
            on_host(await self.probe_host(plan))

        await asyncio.gather(*(one(plan) for plan in plans))


def probe_plans(
    plans: list[HostPlan],
    config: ProbeConfig,
    *,
    on_host: Callable[[HostOutcome], None],
    concurrency: int = DEFAULT_CONCURRENCY,
    per_network: int = DEFAULT_PER_NETWORK,
) -> Engine:
    """Synchronous entry: probe `plans` in a fresh event loop; returns the engine (stats)."""

    async def main() -> Engine:
        engine = Engine(config, concurrency=concurrency, per_network=per_network)
        await engine.run(plans, on_host)
        return engine

    return asyncio.run(main())
