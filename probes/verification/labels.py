"""Words people read for probe codes, and a run's counters as its progress box shows them.

Plain Python: the codes themselves stay what the command line prints. The template filters
(probes.templatetags.probe_labels) and ProbeRun.count_tiles both read them from here.
"""

from __future__ import annotations

from probes.verification.base import (
    ERROR,
    HTTP_PROXY,
    NOT_OPEN,
    OPEN,
    SMTP_RELAY,
    SOCKS4,
    SOCKS5,
    UNREACHABLE,
)

VERDICT_LABELS = {OPEN: "Open", NOT_OPEN: "Not open", UNREACHABLE: "Unreachable", ERROR: "Error"}
# Hosts lab-only mode (PROBE_LAB_ONLY) kept the probes away from: counted as `error` on the
# command line, under their own key and words on the pages (ProbeRun.shown_counts).
REFUSED_OUTSIDE_LAB = "refused_outside_lab"
REFUSED_OUTSIDE_LAB_LABEL = "Refused: outside the lab"
CHECK_LABELS = {
    SMTP_RELAY: "SMTP relay", HTTP_PROXY: "HTTP proxy", SOCKS4: "SOCKS4", SOCKS5: "SOCKS5",
}


def verdict_label(code: str) -> str:
    return VERDICT_LABELS.get(code, code)


def check_label(code: str) -> str:
    return CHECK_LABELS.get(code, code)


def verdict_tiles(by_verdict: dict[str, int], shown: dict[str, int], *,
                  lab_only: bool) -> list[dict]:
    """A run's tiles: `{key, label, n, field}`; `field` is what job-progress.js fills from
    the run's status JSON. Hosts refused as outside the lab get their own tile, not "Error";
    in lab-only mode it is there from the start, for the live count."""
    tiles = [{"key": key, "label": verdict_label(key), "n": n, "field": f"by_verdict.{key}"}
             for key, n in by_verdict.items() if key != ERROR]
    tiles.append({"key": ERROR, "label": verdict_label(ERROR), "n": shown[ERROR],
                  "field": f"shown.{ERROR}"})
    refused = shown[REFUSED_OUTSIDE_LAB]
    if refused or lab_only:
        tiles.append({"key": REFUSED_OUTSIDE_LAB, "label": REFUSED_OUTSIDE_LAB_LABEL,
                      "n": refused, "field": f"shown.{REFUSED_OUTSIDE_LAB}"})
    return tiles
