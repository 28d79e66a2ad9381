"""bench/reliability.py rewrites only its own section of README.md, the same way every time."""

from __future__ import annotations

import importlib.util
import re

import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("reliability", REPO / "bench" / "reliability.py")
reliability = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reliability)
BEGIN, END = reliability.BEGIN, reliability.END

README = """# Project

Intro.

## Benchmarks

| benchmark | figure |
|---|---|
| a | 1 s |

## Licence

MIT.
"""


def test_without_markers_the_section_goes_after_the_benchmarks_and_nothing_else_moves():
    out = reliability.rewrite_section(README, "figures of today")
    assert out.count(BEGIN) == 1 and out.count(END) == 1
    head, rest = out.split("## Reliability\n\n", 1)
    assert head == README.split("## Licence")[0]  # everything before is untouched
    assert rest == f"{BEGIN}\nfigures of today\n{END}\n\n## Licence\n\nMIT.\n"


def test_a_readme_ending_with_the_benchmarks_gets_the_section_at_the_end():
    text = README.split("## Licence")[0].rstrip("\n") + "\n"
    out = reliability.rewrite_section(text, "x")
    assert out == text + f"\n## Reliability\n\n{BEGIN}\nx\n{END}\n"


def test_rerunning_replaces_only_the_text_between_the_markers():
    once = reliability.rewrite_section(README, "old figures\n\nmore old lines")
    # Someone edits the README around the section between two runs: kept as it is.
    edited = once.replace("Intro.", "Intro, edited.").replace("MIT.", "MIT, edited.")
    twice = reliability.rewrite_section(edited, "new figures")
    assert twice == edited.replace("old figures\n\nmore old lines", "new figures")
    assert reliability.rewrite_section(twice, "new figures") == twice  # idempotent
    before, after = twice.split(BEGIN)[0], twice.split(END)[1]
    assert before == edited.split(BEGIN)[0] and after == edited.split(END)[1]


@pytest.mark.parametrize("broken", [
    f"a\n{BEGIN}\nb\n",  # no end
    f"a\n{END}\nb\n{BEGIN}\n",  # wrong order
    f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n",  # twice
])
def test_damaged_markers_are_refused_not_guessed(broken):
    with pytest.raises(ValueError):
        reliability.rewrite_section(broken, "x")


def summary(**overrides):
    base = {
        "date": "2026-11-23",
        "faults": {"runs": 1, "tests": [
            {"fault": "an import killed mid feed", "module": "m", "runs": 1, "passed": 1},
            {"fault": "postgres restarted", "module": "m", "runs": 1, "passed": 0}]},
        "fuzz": {"tests": 3, "passed": 3, "inputs": 12345, "invalid": 10, "failed_inputs": 0,
                 "hypothesis_tests": 2, "per_test": []},
        "matrix": {"urls": 40, "callers": ["anonymous", "analyst"], "roles_passed": 2,
                   "roles_total": 2, "tests": 9, "passed": 9, "error": ""},
        "load": None, "load_note": "(not run)", "fuzz_select": "fuzz",
    }
    base.update(overrides)
    return base


def test_the_section_states_the_figures_it_was_given():
    text = reliability.render(summary())
    assert "2026-11-23" in text
    assert "1 of 2 injected faults" in text and "- ✗ postgres restarted (0/1)" in text
    assert "12,345 inputs over 2 Hypothesis tests" in text
    assert "40 named URLs × 2 callers (anonymous, analyst) = 80 cells" in text
    assert "requests held | not measured (not run)" in text
    # A table the README renders: every row has the header's three columns.
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows and all(line.count("|") == 4 for line in rows), rows


def test_the_load_figures_come_from_the_load_benchs_json():
    load = {"date": "2026-11-22", "requests": 1819, "sessions": 20, "seconds": 120.0,
            "requests_per_s": 15.2, "errors": 0, "p95_ms": 237.0, "target_ms": 500.0,
            "ok": True, "hosts_seeded": 500000,
            "during_import": {"p95_ms": 314.1},
            "per_page": [{"page": "campaign dashboard", "p95_ms": 477.1}],
            "import": {"lines": 1000000, "seconds": 52.1},
            "probe": {"runs": 19, "hosts_probed": 228, "misjudged_runs": 0},
            "cpu": {"cores": 2, "other_cores": 0.67}}
    text = reliability.render(summary(load=load))
    row = next(line for line in text.splitlines() if line.startswith("| requests held"))
    assert "1,819 requests by 20 staff sessions in 120 s" in row
    assert "page p95 237 ms" in row and "target < 500 ms: OK" in row
    assert "1,000,000-line import ran (52 s under load)" in row
    assert "0.67 of its 2 cores" in row and row.count("|") == 4


def test_no_fuzz_test_selected_is_said_not_hidden():
    z = {"tests": 0, "passed": 0, "inputs": 0, "invalid": 0, "failed_inputs": 0,
         "hypothesis_tests": 0, "per_test": []}
    assert "none: no test selected by `-m fuzz`" in reliability.render(summary(fuzz=z))


def test_the_services_default_to_bin_tests():
    settings = (REPO / "campaign" / "test_settings.py").read_text()
    defaults = dict(re.findall(r'setdefault\("(\w+)", "([^"]+)"\)', settings))
    assert reliability.DEFAULT_DATABASE_URL == defaults["DATABASE_URL"]
    assert reliability.DEFAULT_REDIS_URL == defaults["REDIS_URL"]
