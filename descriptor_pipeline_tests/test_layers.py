"""The layering holds: no import circle, no import from a lower layer to a higher one, no
Dagster in the domain, and no module one cannot hold in one's head."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "descriptor_pipeline"
# beside the package, its benchmarks and its tests are held to the same MAX_LINES
OTHER_FOLDERS = ("bench", "descriptor_pipeline_tests")
# lowest first; a module may import only from its own layer or lower ones. The pure domain
# (no Dagster, no database) sits under the I/O layer, which sits under the quality suites;
# the stages join them, Dagster's definitions drive the stages, and the CLI drives everything.
LAYERS: list[set[str]] = [
    {"id_ranges", "rejections", "values", "celery_routing", "catalog_config"},
    {"schema", "rules"},
    {"normalization", "documents", "source_profiles"},
    {"search_query", "schema_doc"},  # search folds text as documents do
    {  # I/O: the catalog source, the index store and what they stand on
        "faults",
        "gc_tuning",
        "tables",
        "store_engine",
        "catalog",
        "catalog_changes",
        "partition_lock",
        "partition_ledger",
        "index_store_postgres",
        "search_sqlite",
        "search",
        "index_store",
        "demo",
    },
    {"quality"},
    {"freshness", "stages", "raw_stage", "refresh", "dry_run"},
    {"defs", "celery_app", "definitions"},
    {"cli"},
]
DOMAIN = {
    "schema", "rules", "normalization", "documents", "id_ranges", "values", "rejections",
    "source_profiles", "search_query", "schema_doc", "catalog_config", "celery_routing",
}  # fmt: skip
# what the domain must not import: an orchestrator, a database driver, a validation framework
NOT_IN_DOMAIN = {"dagster", "sqlalchemy", "psycopg", "sqlite3", "great_expectations", "celery"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__")
        found[name or "__init__"] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every descriptor_pipeline module a file imports, lazily inside functions included."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("descriptor_pipeline"):
                base = node.module.removeprefix("descriptor_pipeline").lstrip(".")
                for alias in node.names:
                    out.add(f"{base}.{alias.name}" if base else alias.name)
                    out.add(base)
        elif isinstance(node, ast.Import):
            out.update(
                a.name.removeprefix("descriptor_pipeline.")
                for a in node.names
                if a.name.startswith("descriptor_pipeline.")
            )
    return {m for m in out if m}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {m for m in _imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def test_no_import_circle() -> None:
    graph = _graph()
    # a package's own __init__ re-exporting its modules is not an edge between concerns
    edges = {m: {t for t in ts if not m.startswith(f"{t}.")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in edges.get(node, ()):
            if state.get(target) == 1:
                cycle = [*stack[stack.index(target) :], target]
                raise AssertionError(f"import circle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_imports_point_down() -> None:
    upward = [
        f"{m} -> {t}"
        for m, targets in _graph().items()
        if m != "__init__"
        for t in targets
        if t != "__init__" and _layer(t) > _layer(m)
    ]
    assert not upward, upward


def _third_party(path: Path) -> set[str]:
    """Top-level packages a file imports (`import x.y`, `from x.y import z`), lazily too."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
    return out


def test_the_domain_imports_neither_dagster_nor_a_database() -> None:
    found = {
        name: sorted(_third_party(path) & NOT_IN_DOMAIN)
        for name, path in _modules().items()
        if name.split(".")[0] in DOMAIN
    }
    assert {name: bad for name, bad in found.items() if bad} == {}
    assert set(found) >= DOMAIN  # every domain module exists and was looked at


def test_every_module_fits_in_ones_head() -> None:
    long = {n: len(p.read_text().splitlines()) for n, p in _modules().items()}
    assert {n: lines for n, lines in long.items() if lines > MAX_LINES} == {}


@pytest.mark.parametrize("folder", OTHER_FOLDERS)
def test_every_bench_and_test_module_fits_in_ones_head(folder: str) -> None:
    long = {p.name: len(p.read_text().splitlines()) for p in (REPO / folder).glob("*.py")}
    assert len(long) > 1, f"no modules found in {folder}/"
    assert {n: lines for n, lines in long.items() if lines > MAX_LINES} == {}
