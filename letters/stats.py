"""Small statistics for the letters' effect, in plain Python (no Django, no numpy).

Wilson's score interval for a proportion, Newcombe's hybrid score interval for a difference
of two proportions (method 10 in Newcombe 1998), and the Kaplan–Meier median for times to
remediation with hosts still open at the cut-off (right-censored).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for successes/n; (0, 1) when there is nothing to go on."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"{successes} successes out of {n}")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # Clamp rounding noise: at 0 or n successes one end is exactly 0 or 1.
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95
             ) -> tuple[float, tuple[float, float]]:
    """p1 − p2 with Newcombe's hybrid score interval (built from the two Wilson intervals)."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both groups need at least one host")
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, (max(-1.0, lower), min(1.0, upper))


def kaplan_meier(table: Iterable[tuple[float, int, int]]) -> list[tuple[float, float]]:
    """[(time, survival after it)] at each event time, from (time, events, censored) counts.

    Rows may repeat a time (they are summed). Hosts censored at a time count as at risk at
    that time, as usual: they were seen open then.
    """
    by_time: dict[float, list[int]] = {}
    for time, events, censored in table:
        counts = by_time.setdefault(time, [0, 0])
        counts[0] += events
        counts[1] += censored
    at_risk = sum(e + c for e, c in by_time.values())
    survival = 1.0
    curve = []
    for time in sorted(by_time):
        events, censored = by_time[time]
        if events and at_risk:
            survival *= 1 - events / at_risk
            curve.append((time, survival))
        at_risk -= events + censored
    return curve


def km_median(table: Iterable[tuple[float, int, int]]) -> float | None:
    """The first time the Kaplan–Meier survival falls to one half or below (None: never)."""
    for time, survival in kaplan_meier(table):
        if survival <= 0.5 + 1e-12:
            return time
    return None
