"""Fixed-window rate limits in the shared cache (Redis in production): the recipient's page
and the API count their requests here.

cache.add + incr are atomic in Redis (and in locmem), so concurrent web processes share one
count. Only a digest of what is counted (a token, an address) goes into the key.
"""

from __future__ import annotations

import hashlib
import time

from django.core.cache import cache


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"rate limited for {retry_after}s")
        self.retry_after = retry_after


def count_hit(namespace: str, scope: str, ident: str, *, limit: int, window: int) -> None:
    """Count one request of `ident` in the current window; raise RateLimited past `limit`."""
    now = int(time.time())
    slot = now // window
    key = f"{namespace}:rl:{scope}:{hashlib.sha256(ident.encode()).hexdigest()[:24]}:{slot}"
    cache.add(key, 0, timeout=window + 5)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 5)
        used = 1
    if used > limit:
        raise RateLimited(window - now % window)
