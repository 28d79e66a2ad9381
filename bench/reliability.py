"""Reliability figures for README.md's "## Reliability" section, measured, never typed in.

    bin/reliability [--skip-load] [--faults-runs N] [--fuzz-marker fuzz] [--no-write]

Runs, each in a pytest process of its own with this module loaded as a plugin (`-p
reliability`, which records every test's outcome and counts Hypothesis's test cases through
its observability callback):

- the fault tests (`-m faults`): which faults were injected and how many runs survived them;
- the fuzz tests (`-m fuzz`, --fuzz-marker/--fuzz-path choose others): how many inputs
  Hypothesis tried (every test case it ran: explicit, replayed, generated and shrunk);
- the access matrix (tests/test_access_matrix.py): named URLs × callers checked;
- bench/load_bench.py: the requests 20 staff sessions made during a 1M-line import and probe
  runs, and their p95 (--skip-load reuses its last figures from var/bench/load_bench.json).

It then rewrites the text between `<!-- reliability:begin -->` and `<!-- reliability:end -->`
in README.md (adding the section after "## Benchmarks" if the markers are missing), dated;
nothing else in the file changes, and a rerun replaces its own text. PostgreSQL and Redis are
bin/test's: DATABASE_URL and REDIS_URL, defaulting as in campaign/test_settings.py. The exit
status is non-zero if any group failed (the figures are written all the same, saying so).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
LOAD_JSON = REPO / "var" / "bench" / "load_bench.json"
BEGIN, END = "<!-- reliability:begin -->", "<!-- reliability:end -->"
HEADING = "## Reliability"
AFTER_HEADING = "## Benchmarks"
# bin/test's services (the defaults of campaign/test_settings.py; a test checks they agree).
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/sys"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
OUT_ENV = "RELIABILITY_OUT"  # where the plugin writes what it saw (JSON)


# --- the pytest plugin (loaded in the pytest process with `-p reliability`) ------------------

class _Seen:
    tests: dict[str, dict] = {}
    inputs: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


def _on_observation(observation, thread_id=None) -> None:
    if getattr(observation, "type", None) != "test_case":
        return
    counts = _Seen.inputs[observation.property]
    counts["inputs"] += 1
    counts[observation.status] += 1  # passed | failed | gave_up (an invalid draw)


def pytest_configure(config) -> None:
    if not os.environ.get(OUT_ENV):
        return
    try:
        from hypothesis.internal import observability
    except ImportError:
        return
    # Coverage tracing (on by default with observability) would only slow the tests down.
    observability.OBSERVABILITY_COLLECT_COVERAGE = False
    add = getattr(observability, "add_observability_callback", None)
    if add is not None:
        add(_on_observation, all_threads=True)
    else:  # an older Hypothesis
        observability.TESTCASE_CALLBACKS.append(_on_observation)


def pytest_collection_finish(session) -> None:
    for item in session.items:  # what the -m / -k selection kept
        doc = (getattr(getattr(item, "function", None), "__doc__", None) or "").strip()
        _Seen.tests[item.nodeid] = {
            "function": getattr(item, "originalname", item.name),
            "module": item.nodeid.split("::", 1)[0],
            "doc": doc.splitlines()[0] if doc else "",
            "markers": sorted({m.name for m in item.iter_markers()}),
            "outcome": "not run",
            "seconds": 0.0,
        }


def pytest_runtest_logreport(report) -> None:
    test = _Seen.tests.get(report.nodeid)
    if test is None:
        return
    test["seconds"] += report.duration
    if report.failed:
        test["outcome"] = "failed" if report.when == "call" else "error"
    elif report.skipped:
        test["outcome"] = "skipped"
    elif report.when == "call" and test["outcome"] == "not run":
        test["outcome"] = "passed"


def pytest_sessionfinish(session, exitstatus) -> None:
    out = os.environ.get(OUT_ENV)
    if not out:
        return
    matrix = {}
    module = sys.modules.get("tests.test_access_matrix")
    if module is not None:
        try:  # the test asserts its rows are exactly the site's named URLs
            matrix = {"urls": len(module._named(module.root_urls.urlpatterns)),
                      "callers": list(module.WHO)}
        except Exception as exc:  # the module changed shape: say so, do not guess
            matrix = {"error": f"{type(exc).__name__}: {exc}"}
    Path(out).write_text(json.dumps({
        "exitstatus": int(exitstatus),
        "tests": _Seen.tests,
        "inputs": {k: dict(v) for k, v in _Seen.inputs.items()},
        "matrix": matrix,
    }, indent=1))


# --- running the groups ---------------------------------------------------------------------

def run_pytest(args: list[str], label: str) -> dict:
    """One pytest process with this plugin; what it saw (tests, inputs, matrix)."""
    with tempfile.TemporaryDirectory(prefix="sys-reliability-") as tmp:
        out = Path(tmp) / "seen.json"
        env = {**os.environ, OUT_ENV: str(out),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "bench"),
                                                           os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "pytest", "-p", "reliability", "-p",
                   "no:cacheprovider", "-q", *args]
        print(f"== {label}: {' '.join(command[2:])}", flush=True)
        done = subprocess.run(command, cwd=REPO, env=env)
        seen = json.loads(out.read_text()) if out.exists() else {
            "tests": {}, "inputs": {}, "matrix": {}, "exitstatus": done.returncode}
    seen["returncode"] = done.returncode
    return seen


def merge_runs(runs: list[dict]) -> dict:
    """Per test function (its parametrized cases together), over several runs of the same
    selection: how many cases were run and how many passed."""
    tests: dict[tuple[str, str], dict] = {}
    for seen in runs:
        for t in seen["tests"].values():
            row = tests.setdefault((t["module"], t["function"]), {**t, "runs": 0, "passed": 0})
            row["runs"] += 1
            row["passed"] += t["outcome"] == "passed"
    return tests


def describe(test: dict) -> str:
    """A test's one-line description: its name in words (the suite names tests as sentences;
    docstrings explain the mechanism, not the fault)."""
    return test["function"].removeprefix("test_").replace("_", " ")


def summarise(faults_runs: list[dict], fuzz: dict, matrix: dict, load: dict | None,
              load_note: str = "") -> dict:
    faults = merge_runs(faults_runs)
    fuzz_tests = fuzz["tests"] if fuzz else {}
    inputs = fuzz["inputs"] if fuzz else {}
    matrix = matrix or {"tests": {}, "matrix": {"error": "(skipped)"}}
    by_function: dict[str, dict] = {}
    for t in matrix["tests"].values():
        f = by_function.setdefault(t["function"], {"passed": 0, "total": 0})
        f["total"] += 1
        f["passed"] += t["outcome"] == "passed"
    m = matrix.get("matrix") or {}
    role_test = by_function.get("test_every_url_answers_each_role_as_its_permissions_say",
                                {"passed": 0, "total": 0})
    return {
        "date": dt.date.today().isoformat(),
        "faults": {
            "tests": [{"fault": describe(t), "module": t["module"], "runs": t["runs"],
                       "passed": t["passed"]} for t in faults.values()],
            "runs": len(faults_runs),
        } if faults_runs else None,
        "fuzz": None if fuzz is None else {
            "tests": len(fuzz_tests),
            "passed": sum(t["outcome"] == "passed" for t in fuzz_tests.values()),
            "inputs": sum(c.get("inputs", 0) for c in inputs.values()),
            "invalid": sum(c.get("gave_up", 0) for c in inputs.values()),
            "failed_inputs": sum(c.get("failed", 0) for c in inputs.values()),
            "hypothesis_tests": len(inputs),
            "per_test": sorted(((k, c.get("inputs", 0)) for k, c in inputs.items()),
                               key=lambda kv: -kv[1]),
        },
        "matrix": {
            "urls": m.get("urls"), "callers": m.get("callers") or [],
            "roles_passed": role_test["passed"], "roles_total": role_test["total"],
            "tests": len(matrix["tests"]),
            "passed": sum(t["outcome"] == "passed" for t in matrix["tests"].values()),
            "error": m.get("error", ""),
        },
        "load": load,
        "load_note": load_note,
    }


# --- the README section -----------------------------------------------------------------------

def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def render(s: dict) -> str:
    """The Markdown between the markers (without them)."""
    lines = [f"Measured by `bin/reliability` on {s['date']} (2-core machine, PostgreSQL and "
             "Redis on loopback). Rerun it to refresh this section; it rewrites only the text "
             "between its markers.", "", "| what | figure | how |", "|---|---|---|"]
    f = s["faults"]
    if f:
        survived = sum(t["passed"] == t["runs"] for t in f["tests"])
        runs = f"{f['runs']} runs each, " if f["runs"] > 1 else ""
        lines.append(f"| faults survived | {survived} of {len(f['tests'])} injected faults "
                     f"({runs}{sum(t['passed'] for t in f['tests'])}/"
                     f"{sum(t['runs'] for t in f['tests'])} test runs passed) | `-m faults`: "
                     "a real worker, Redis and PostgreSQL killed or restarted mid-work; exact "
                     "counts checked after |")
    else:
        lines.append("| faults survived | not measured (skipped) | |")
    z = s["fuzz"]
    if z is None:
        lines.append("| inputs tried | not measured (skipped) | |")
    elif z["tests"]:
        lines.append(f"| inputs tried | {_n(z['inputs'])} inputs over "
                     f"{z['hypothesis_tests']} Hypothesis tests ({_n(z['invalid'])} rejected as "
                     f"invalid draws); {z['passed']} of {z['tests']} fuzz tests passed | "
                     f"`-m {s.get('fuzz_select', 'fuzz')}`: every test case Hypothesis ran, "
                     "counted through its observability hook |")
    else:
        lines.append(f"| inputs tried | none: no test selected by "
                     f"`-m {s.get('fuzz_select', 'fuzz')}` | |")
    m = s["matrix"]
    if m["urls"]:
        callers = len(m["callers"])
        lines.append(f"| access matrix | {m['urls']} named URLs × {callers} callers "
                     f"({', '.join(m['callers'])}) = {m['urls'] * callers} cells; "
                     f"{m['roles_passed']} of {m['roles_total']} callers answered as their "
                     f"permissions say; {m['passed']} of {m['tests']} access tests passed | "
                     "tests/test_access_matrix.py: status expected from each URL's permission, "
                     "not recorded |")
    else:
        lines.append(f"| access matrix | not measured {m.get('error', '')} | |")
    load = s["load"]
    if load:
        imp, probe = load["import"], load["probe"]
        took = f"{imp['seconds']:.0f} s" if imp.get("seconds") else "did not finish"
        lines.append(
            f"| requests held | {_n(load['requests'])} requests by {load['sessions']} staff "
            f"sessions in {load['seconds']:.0f} s ({load['requests_per_s']} req/s), "
            f"{load['errors']} errors; page p95 {load['p95_ms']:.0f} ms (p95 while the "
            f"import ran {load['during_import']['p95_ms']:.0f} ms, worst page "
            f"{load['per_page'][0]['page']} {load['per_page'][0]['p95_ms']:.0f} ms), target "
            f"< {load['target_ms']:.0f} ms: {'OK' if load['ok'] else 'NOT MET'} | "
            f"bench/load_bench.py ({load['date']}): gunicorn and a Celery worker on "
            f"{load['hosts_seeded']:,} seeded hosts, while a {imp['lines']:,}-line import "
            f"ran ({took} under load) and {probe['runs']} probe runs over the lab "
            f"({probe['hosts_probed']} hosts, {probe.get('misjudged_runs', 0)} misjudged)"
            + (f"; other work on the machine took {load['cpu']['other_cores']:.2f} of its "
               f"{load['cpu']['cores']} cores meanwhile" if load.get("cpu") else "") + " |")
    else:
        lines.append(f"| requests held | not measured {s.get('load_note', '')} | |")
    if f and f["tests"]:
        lines += ["", "Faults injected (tests/faults/), runs passed:", ""]
        for t in f["tests"]:
            mark = "✓" if t["passed"] == t["runs"] else "✗"
            lines.append(f"- {mark} {t['fault']} ({t['passed']}/{t['runs']})")
    return "\n".join(lines)


def rewrite_section(text: str, body: str) -> str:
    """`text` with the reliability section's body replaced by `body`; nothing else changes.

    Without markers, a "## Reliability" section holding them is added after the Benchmarks
    section (before the next "## " heading), or at the end if there is none.
    """
    block = f"{BEGIN}\n{body.strip()}\n{END}"
    begins, ends = text.count(BEGIN), text.count(END)
    if begins or ends:
        if begins != 1 or ends != 1 or text.index(BEGIN) > text.index(END):
            raise ValueError(f"README.md must hold {BEGIN} once, then {END} once")
        start = text.index(BEGIN)
        stop = text.index(END) + len(END)
        return text[:start] + block + text[stop:]
    section = f"{HEADING}\n\n{block}\n"
    after = re.search(rf"^{re.escape(AFTER_HEADING)}\b.*$", text, re.M)
    nxt = re.search(r"^## ", text[after.end():], re.M) if after else None
    if nxt is None:
        return text.rstrip("\n") + "\n\n" + section
    at = after.end() + nxt.start()
    return text[:at] + section + "\n" + text[at:]


# --- main -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults-runs", type=int, default=1,
                        help="run the fault tests this many times")
    parser.add_argument("--fuzz-marker", default="fuzz",
                        help="the -m expression selecting the fuzz tests")
    parser.add_argument("--fuzz-path", action="append", default=[],
                        help="where to look for them (default: the whole suite)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=("faults", "fuzz", "matrix", "load"),
                        help="leave a group out (load: reuse its last figures, "
                             f"{LOAD_JSON.relative_to(REPO)})")
    parser.add_argument("--skip-load", action="store_true", help="the same as --skip load")
    parser.add_argument("--load-args", default="",
                        help="extra arguments for bench/load_bench.py, e.g. '--duration 60'")
    parser.add_argument("--no-write", action="store_true", help="print, leave README.md alone")
    parser.add_argument("--readme", default=str(README))
    args = parser.parse_args(argv)

    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "campaign.test_settings")

    skip = set(args.skip) | ({"load"} if args.skip_load else set())
    failed = []
    faults_runs = []
    for i in range(0 if "faults" in skip else args.faults_runs):
        seen = run_pytest(["-m", "faults"], f"faults (run {i + 1} of {args.faults_runs})")
        faults_runs.append(seen)
        if seen["returncode"] != 0:
            failed.append(f"faults run {i + 1}")
    fuzz = matrix = None
    if "fuzz" not in skip:
        fuzz = run_pytest(["-m", args.fuzz_marker, *args.fuzz_path],
                          f"fuzz (-m {args.fuzz_marker})")
        if fuzz["returncode"] not in (0, 5):  # 5: no test selected (said in the section)
            failed.append("fuzz")
    if "matrix" not in skip:
        matrix = run_pytest(["tests/test_access_matrix.py"], "access matrix")
        if matrix["returncode"] != 0:
            failed.append("access matrix")

    load, note = None, ""
    if "load" not in skip:
        print("== load: bench/load_bench.py " + args.load_args, flush=True)
        done = subprocess.run([sys.executable, str(REPO / "bench" / "load_bench.py"),
                               "--json", str(LOAD_JSON), *args.load_args.split()], cwd=REPO)
        if done.returncode != 0:
            failed.append("load bench")
    if LOAD_JSON.exists():
        load = json.loads(LOAD_JSON.read_text())
    else:
        note = f"(no {LOAD_JSON.relative_to(REPO)}: run without --skip-load)"

    summary = summarise(faults_runs, fuzz, matrix, load, note)
    summary["fuzz_select"] = args.fuzz_marker + (
        " " + " ".join(args.fuzz_path) if args.fuzz_path else "")
    body = render(summary)
    print("\n" + body + "\n")
    if not args.no_write:
        readme = Path(args.readme)
        readme.write_text(rewrite_section(readme.read_text(), body))
        print(f"{readme.name}: the reliability section rewritten")
    if failed:
        print("FAILED: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
