"""Pacing outgoing letters: at most N a minute overall and M a minute per recipient domain.

Plain Python, no Django, with an injectable clock and sleep so tests run in no time. A
domain that has used its share does not hold up the queue: letters to other domains go
first (a mailbox provider that sees 500 letters a minute from a regulator starts deferring).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
WINDOW = 60.0
# How far down the queue to look for a letter whose domain is not held back; bounds the cost
# of one pick when a few large domains dominate a batch.
LOOKAHEAD = 500


class Throttle:
    def __init__(self, per_minute: float = 0, per_domain_per_minute: float = 0,
                 clock: Callable[[], float] = time.monotonic, window: float = WINDOW) -> None:
        self.per_minute = int(per_minute or 0)
        self.per_domain = int(per_domain_per_minute or 0)
        self.clock = clock
        self.window = window
        self._all: deque[float] = deque()
        self._domains: dict[str, deque[float]] = defaultdict(deque)

    def _wait(self, stamps: deque[float], limit: int, now: float) -> float:
        if not limit:
            return 0.0
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if len(stamps) < limit:
            return 0.0
        return stamps[0] + self.window - now

    def wait_time(self, domain: str) -> float:
        now = self.clock()
        return max(self._wait(self._all, self.per_minute, now),
                   self._wait(self._domains[domain], self.per_domain, now))

    def record(self, domain: str) -> None:
        now = self.clock()
        if self.per_minute:
            self._all.append(now)
        if self.per_domain:
            self._domains[domain].append(now)


def paced(items: Iterable[tuple[T, str]], throttle: Throttle,
          sleep: Callable[[float], None] = time.sleep) -> Iterator[T]:
    """Yield each item (item, domain) when the throttle allows, sleeping as needed."""
    pending: deque[tuple[T, str]] = deque(items)
    while pending:
        chosen = None
        shortest = math.inf
        for index, (_, domain) in enumerate(pending):
            if index >= LOOKAHEAD:
                break
            wait = throttle.wait_time(domain)
            if wait <= 0:
                chosen = index
                break
            shortest = min(shortest, wait)
        if chosen is None:
            sleep(shortest)
            continue
        item, domain = pending[chosen]
        del pending[chosen]
        throttle.record(domain)
        yield item
