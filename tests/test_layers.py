"""One direction of dependencies: every product module's imports, checked against its layer.

Each module's imports are read with `ast` (no module is imported), those inside functions
included: an import inside a function is still a dependency, and it is how a cycle hides.
A module may import modules of its own layer or of a layer below, never above. The layers,
top to bottom:

| layer     | holds                                                                        |
|-----------|------------------------------------------------------------------------------|
| tooling   | `bench/`, `devtools/` (demo lab, demo data): nothing in the product imports  |
|           | them                                                                         |
| project   | settings, URL confs, the Celery app, WSGI, each app's AppConfig (`apps.py`): |
|           | the wiring, where a lower layer's signals are connected to upper code        |
| interface | the ways in: staff and public pages (views), the Django admin, template      |
|           | tags, management commands, the ESP webhooks. Above reporting: the campaign   |
|           | page shows the dashboard, `campaign_status` prints the report                |
| reporting | the dashboard, the campaign and operation reports, the effect, statistics    |
| features  | three packages, each with its services, tasks, selectors, pages and forms:   |
|           | `imports` (feeds into hosts), `probes` (verification and abuse contacts),    |
|           | `letters` (batches, sending, tracking, follow-ups, the recipient's page)     |
| core      | campaign models and the rules every feature shares: host states, kinds,      |
|           | audit, roles, agencies and routing, addresses and the outbound guard, jobs   |

Within features one direction more: letters may import probes (a letter is about verified
hosts and their contacts), probes must not import letters, and imports stand alone (they
only add hosts). A lower layer that must tell an upper one something ("hosts changed: drop
the cached dashboard") sends a signal it defines (`campaign.signals`), and the upper layer
connects to it in its AppConfig.ready().

The module graph has no cycle at all, within a layer either.
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Container, Iterable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("campaign", "letters", "probes", "devtools", "bench")

LAYERS = ("core", "features", "reporting", "interface", "project", "tooling")  # bottom first

# Module (a glob on the dotted name) → layer, and for features the package. First match
# wins, so specific entries come before their package's catch-all.
LAYER_MAP: tuple[tuple[str, str, str], ...] = (
    # module (glob)                      layer        feature package
    ("bench.*",                          "tooling",   ""),
    ("devtools",                         "tooling",   ""),
    ("devtools.*",                       "tooling",   ""),
    # -- project: the wiring ------------------------------------------------------------
    ("campaign",                         "project",   ""),  # __init__ loads the Celery app
    ("campaign.settings",                "project",   ""),
    ("campaign.test_settings",           "project",   ""),
    ("campaign.urls",                    "project",   ""),
    ("campaign.web_urls",                "project",   ""),
    ("campaign.celery",                  "project",   ""),
    ("campaign.wsgi",                    "project",   ""),
    ("campaign.embedded_db",             "project",   ""),  # the database the settings name
    ("campaign.embedded_db.*",           "project",   ""),
    ("letters.urls",                     "project",   ""),
    ("letters.recipient_urls",           "project",   ""),
    ("*.apps",                           "project",   ""),
    # -- interface: pages, admin, template tags, commands, webhooks ------------------
    ("*.management",                     "interface", ""),
    ("*.management.*",                   "interface", ""),
    ("*.templatetags",                   "interface", ""),
    ("*.templatetags.*",                 "interface", ""),
    ("*.admin",                          "interface", ""),
    ("campaign.views",                   "interface", ""),
    ("campaign.campaign_views",          "interface", ""),
    ("campaign.agency_views",            "interface", ""),
    ("campaign.job_views",               "interface", ""),
    ("campaign.subscription_views",      "interface", ""),
    ("campaign.api",                     "interface", ""),
    ("campaign.token_views",             "interface", ""),
    ("campaign.forms",                   "interface", ""),
    ("campaign.login",                   "interface", ""),
    ("campaign.csp",                     "interface", ""),
    ("campaign.context_processors",      "interface", ""),
    ("campaign.cli",                     "interface", ""),
    ("letters.views",                    "interface", ""),
    ("letters.template_views",           "interface", ""),
    ("letters.postal_views",             "interface", ""),
    ("letters.recipient_views",          "interface", ""),
    ("letters.receivers",                "interface", ""),
    ("letters.webhooks",                 "interface", ""),
    ("probes.views",                     "interface", ""),
    ("probes.contact_views",             "interface", ""),
    # -- reporting ------------------------------------------------------------------------
    ("campaign.dashboard",               "reporting", ""),
    ("campaign.reports",                 "reporting", ""),
    ("letters.report",                   "reporting", ""),
    ("letters.deliverability",           "reporting", ""),
    ("letters.report_sql",               "reporting", ""),
    ("letters.outcomes",                 "reporting", ""),
    ("letters.effect",                   "reporting", ""),
    ("letters.stats",                    "reporting", ""),
    # -- features -------------------------------------------------------------------------
    ("campaign.imports",                 "features",  "imports"),
    ("campaign.staging",                 "features",  "imports"),
    ("campaign.feeds",                   "features",  "imports"),
    ("campaign.feeds.*",                 "features",  "imports"),
    ("campaign.uploads",                 "features",  "imports"),
    ("campaign.subscriptions",           "features",  "imports"),
    ("campaign.tasks",                   "features",  "imports"),
    ("probes",                           "features",  "probes"),
    ("probes.*",                         "features",  "probes"),
    ("letters",                          "features",  "letters"),
    ("letters.*",                        "features",  "letters"),
    # -- core -----------------------------------------------------------------------------
    ("campaign.models",                  "core",      ""),
    ("campaign.migrations",              "core",      ""),
    ("campaign.migrations.*",            "core",      ""),
    ("campaign.jobs",                    "core",      ""),
    ("campaign.hosts",                   "core",      ""),
    ("campaign.signals",                 "core",      ""),
    ("campaign.states",                  "core",      ""),
    ("campaign.kinds",                   "core",      ""),
    ("campaign.audit",                   "core",      ""),
    ("campaign.roles",                   "core",      ""),
    ("campaign.agencies",                "core",      ""),
    ("campaign.addresses",               "core",      ""),
    ("campaign.outbound",                "core",      ""),
    ("campaign.clientip",                "core",      ""),
    ("campaign.env",                     "core",      ""),
    ("campaign.languages",               "core",      ""),
    ("campaign.selectors",               "core",      ""),
    ("campaign.services",                "core",      ""),
    ("campaign.automation",              "core",      ""),
    ("campaign.ratelimit",               "core",      ""),
    ("campaign.tokens",                  "core",      ""),
)

# Between feature packages: who may import whom (a package may always import itself).
FEATURE_DEPENDENCIES: Mapping[str, frozenset[str]] = {
    "letters": frozenset({"probes"}),
    "probes": frozenset(),
    "imports": frozenset(),
}

# (importer, imported) pairs allowed for now. Only ever shrinks: an entry that no longer
# occurs fails the test, so whoever fixes one removes it.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()


# --- reading the imports -------------------------------------------------------------------


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules(root: Path = REPO) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    return found


def imported_names(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every dotted name the module imports, wherever the import statement is: top level,
    inside functions, classes, `if` and `try` blocks. `from a import b` yields `a.b`, which
    `resolve` turns into the module `a.b` if b is a submodule, else into `a`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            names.update(f"{origin}.{alias.name}" for alias in node.names)
    return names


def resolve(name: str, modules: Container[str]) -> str | None:
    """The longest product module a dotted name starts with (None: not product code)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """module → the product modules it imports. A module's parent packages, which Python
    imports on the way, are not counted: only what the module names."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        names = imported_names(path.read_text(encoding="utf-8"), module,
                               is_package=path.name == "__init__.py")
        graph[module] = {found for found in (resolve(n, modules) for n in names)
                         if found and found != module}
    return graph


# --- the rules -----------------------------------------------------------------------------


def place(module: str, layer_map: Iterable[tuple[str, str, str]] = LAYER_MAP
          ) -> tuple[str, str] | None:
    """(layer, feature package) of a module, None if the table does not say."""
    for pattern, layer, package in layer_map:
        if fnmatch.fnmatchcase(module, pattern):
            return layer, package
    return None


def violations(graph: Mapping[str, Iterable[str]],
               layer_map: Iterable[tuple[str, str, str]] = LAYER_MAP,
               feature_dependencies: Mapping[str, frozenset[str]] = FEATURE_DEPENDENCIES,
               ) -> dict[tuple[str, str], str]:
    """{(importer, imported): why} for every import that goes the wrong way."""
    layer_map = tuple(layer_map)
    found: dict[tuple[str, str], str] = {}
    for importer, targets in graph.items():
        here = place(importer, layer_map)
        for imported in targets:
            there = place(imported, layer_map)
            if here is None or there is None:
                continue  # unplaced modules fail test_every_module_has_a_layer
            (layer, package), (target_layer, target_package) = here, there
            if LAYERS.index(layer) < LAYERS.index(target_layer):
                found[importer, imported] = (f"{layer} module imports {target_layer} module")
            elif (layer == target_layer == "features" and package != target_package
                  and target_package not in feature_dependencies.get(package, ())):
                found[importer, imported] = (f"feature {package} imports feature "
                                             f"{target_package}")
    return found


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:  # recursion depth: the longest import chain, a few dozen
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _report(items: Mapping[tuple[str, str], str]) -> str:
    return "\n".join(f"  {a} -> {b}: {why}" for (a, b), why in sorted(items.items()))


# --- the tests -----------------------------------------------------------------------------

MODULES = product_modules()
GRAPH = import_graph(MODULES)


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in MODULES if place(m) is None)
    assert not unplaced, "add these modules to LAYER_MAP:\n  " + "\n  ".join(unplaced)


def test_every_entry_of_the_table_names_a_module():
    stale = [pattern for pattern, _, _ in LAYER_MAP
             if not any(fnmatch.fnmatchcase(m, pattern) for m in MODULES)]
    assert not stale, f"LAYER_MAP entries that match no module: {stale}"


def test_no_module_imports_a_layer_above_its_own():
    found = violations(GRAPH)
    new = {pair: why for pair, why in found.items() if pair not in KNOWN_VIOLATIONS}
    assert not new, "imports against the layers:\n" + _report(new)


def test_known_violations_only_shrink():
    gone = sorted(KNOWN_VIOLATIONS - set(violations(GRAPH)))
    assert not gone, f"fixed, so remove them from KNOWN_VIOLATIONS: {gone}"


def test_no_import_cycles():
    found = cycles(GRAPH)
    assert not found, "import cycles:\n" + "\n".join("  " + " <-> ".join(c) for c in found)


# --- the checker itself, on made-up graphs -------------------------------------------------


def test_the_checker_reports_a_core_module_importing_the_dashboard():
    source = "def f():\n    from campaign.dashboard import invalidate\n    invalidate()\n"
    names = imported_names(source, "campaign.models")
    graph = {"campaign.models": {resolve(n, MODULES) for n in names}}
    assert graph == {"campaign.models": {"campaign.dashboard"}}  # found inside the function
    assert violations(graph) == {
        ("campaign.models", "campaign.dashboard"): "core module imports reporting module"}


def test_the_checker_reports_probes_importing_letters_but_not_the_reverse():
    graph = {"probes.contacts.suppression": {"letters.models"},
             "letters.followup": {"probes.verification.services"}}
    assert violations(graph) == {
        ("probes.contacts.suppression", "letters.models"): "feature probes imports feature letters"}


def test_the_checker_reports_product_code_importing_tooling():
    graph = {"campaign.management.commands.import_feed": {"bench.load_bench"},
             "probes.verification.services": {"devtools.lab"},
             "devtools.lab": {"probes.verification.canary"}}  # tooling may use the product
    assert violations(graph) == {
        ("campaign.management.commands.import_feed", "bench.load_bench"):
            "interface module imports tooling module",
        ("probes.verification.services", "devtools.lab"): "features module imports tooling module",
    }


def test_the_checker_finds_a_cycle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_relative_and_submodule_imports_resolve_to_modules():
    names = imported_names("from . import base\nfrom ..contacts import models\n",
                           "probes.verification.engine")
    assert {"probes.verification.base", "probes.contacts.models"} <= names
