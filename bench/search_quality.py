"""Search quality over the demo catalog: both backends and three baselines in one run.

    .venv/bin/python -m bench.search_quality [--json bench/results/search_quality.json]

Seeds the demo catalog, publishes it through the pipeline's stages into a SQLite index and a
PostgreSQL index (a database of its own, dropped afterwards; PostgreSQL at
$DESCRIPTOR_TEST_PG_URL or 127.0.0.1:5432), then runs every query of `bench/search_queries.jsonl`
(see `bench/search_queries.py` for its rules) and prints hit@1, recall@10 and MRR per query kind
for:
- sqlite, postgres: `descriptor_pipeline.search.search`, what the CLI and services get;
- fts5_bm25: an FTS5 table over name + aliases + genres with FTS5's default bm25, all words ANDed;
- pg_ts_rank: `to_tsvector('simple', name + aliases + genres)` @@ `plainto_tsquery`, `ts_rank`;
- pg_trgm: `similarity(name, query)` over every published name, best first.

recall@10 counts the expected documents in the top 10 (out of at most 10); MRR is 1/rank of the
first expected document in the top 10.

    .venv/bin/python -m bench.search_quality --latency 100000 [--json …]

instead times one search per query text (and broad genre words) on a generated catalog.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.search_queries import KINDS, load
from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.demo.seed import seed_catalog
from descriptor_pipeline.id_ranges import RESOURCE_TYPES, DescriptorPartition, ranges_covering
from descriptor_pipeline.index_store import IndexStore, open_store
from descriptor_pipeline.raw_stage import extract_raw
from descriptor_pipeline.search import SearchRefused
from descriptor_pipeline.stages import normalization_context, normalize_partition, publish_partition

PG_ADMIN_URL = os.environ.get(
    "DESCRIPTOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TOP = 10
KEEP_DIR = Path(tempfile.gettempdir()) / "dp_search_keep"
Searcher = Callable[[str], list[str]]


def publish_demo(catalog_url: str, index_url: str) -> IndexStore:
    """The demo catalog through raw -> normalized -> index, without Dagster (same stages)."""
    source = open_catalog(catalog_url, None)
    store = open_store(index_url)
    ctx = normalization_context(source)
    for resource_type in RESOURCE_TYPES:
        for span in ranges_covering(source.max_ids()[resource_type], 10_000):
            partition = DescriptorPartition(resource_type, span)
            extract_raw(source, store, partition, 5_000)
            normalize_partition(store, partition, ctx, 5_000)
            publish_partition(store, partition, 5_000)
    return store


def pipeline_searcher(store: IndexStore) -> Searcher:
    def run(query: str) -> list[str]:
        try:
            return [h.document_key for h in store.search(query, limit=TOP)]
        except SearchRefused:
            return []

    return run


def _genres(document: Any) -> str:
    fields = (json.loads(document) if isinstance(document, str) else document)["fields"]
    return " ".join(fields.get("genres", {}).get("value", []))


def fts5_baseline(store: IndexStore) -> Searcher:
    """FTS5's default bm25 over name, aliases and genres: what a plain FTS5 setup gives."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute(
        "CREATE VIRTUAL TABLE b USING fts5(key UNINDEXED, name, aliases, genres, "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT document_key, name, search_aliases, document FROM descriptor_index "
                "WHERE NOT hidden"
            )
        ).all()
    db.executemany(
        "INSERT INTO b VALUES (?, ?, ?, ?)", [(r[0], r[1], r[2], _genres(r[3])) for r in rows]
    )
    from descriptor_pipeline.search import words

    def run(query: str) -> list[str]:
        tokens = words(query)
        if not tokens:
            return []
        match = " ".join(f'"{t}"' for t in tokens)
        found = db.execute("SELECT key FROM b WHERE b MATCH ? ORDER BY rank LIMIT ?", (match, TOP))
        return [r[0] for r in found]

    return run


_TS_DOC = (
    "to_tsvector('simple', name || ' ' || search_aliases || ' ' || "
    "coalesce(document #>> '{fields,genres,value}', ''))"
)


def pg_baselines(store: IndexStore) -> dict[str, Searcher]:
    ts = sa.text(f"""SELECT document_key FROM descriptor_index
        WHERE NOT hidden AND {_TS_DOC} @@ plainto_tsquery('simple', :q)
        ORDER BY ts_rank({_TS_DOC}, plainto_tsquery('simple', :q)) DESC LIMIT {TOP}""")
    trgm = sa.text(f"""SELECT document_key FROM descriptor_index WHERE NOT hidden
        ORDER BY similarity(name, :q) DESC, doc_id LIMIT {TOP}""")

    def runner(statement: sa.TextClause) -> Searcher:
        def run(query: str) -> list[str]:
            with store.engine.connect() as conn:
                return [r[0] for r in conn.execute(statement, {"q": query.replace("\x00", " ")})]

        return run

    return {"pg_ts_rank": runner(ts), "pg_trgm": runner(trgm)}


def score(queries: list[dict[str, Any]], search: Searcher) -> dict[str, dict[str, float]]:
    """hit@1, recall@10 and MRR per kind and overall, plus the mean latency in ms."""
    per: dict[str, list[tuple[float, float, float]]] = {}
    started = time.perf_counter()
    for q in queries:
        found = search(q["query"])[:TOP]
        expected = set(q["expected"])
        rank = next((i for i, k in enumerate(found, 1) if k in expected), None)
        got = len(expected.intersection(found)) / min(len(expected), TOP)
        figures = (float(rank == 1), got, 1 / rank if rank else 0.0)
        per.setdefault(q["kind"], []).append(figures)
        per.setdefault("overall", []).append(figures)
    elapsed = (time.perf_counter() - started) * 1000 / max(len(queries), 1)
    out = {
        kind: {
            "hit@1": sum(f[0] for f in rows) / len(rows),
            "recall@10": sum(f[1] for f in rows) / len(rows),
            "mrr": sum(f[2] for f in rows) / len(rows),
            "n": len(rows),
        }
        for kind, rows in per.items()
    }
    out["overall"]["ms_per_query"] = elapsed
    return out


@contextmanager
def pg_database(keep: str | None = None) -> Iterator[str | None]:
    """A fresh database on the server, dropped afterwards; None when no server answers. With
    `keep`, the database `dp_search_keep_<keep>` is created if missing and left in place."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"dp_search_keep_{keep}" if keep else f"dp_search_quality_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
            if not (keep and exists):
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        print(f"PostgreSQL not reachable at {PG_ADMIN_URL}: its columns are left out ({exc})")
        yield None
        return
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        open_store.cache_clear()
        if not keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def print_table(results: dict[str, dict[str, dict[str, float]]]) -> None:
    systems = list(results)
    print(f"{'kind':11s} {'n':>3s} " + " ".join(f"{s:>22s}" for s in systems))
    print(f"{'':15s} " + " ".join(f"{'hit@1 rec@10   MRR':>22s}" for _ in systems))
    for kind in (*KINDS, "overall"):
        first = results[systems[0]].get(kind)
        if first is None:
            continue
        cells = []
        for s in systems:
            f = results[s][kind]
            cells.append(f"{f['hit@1']:6.3f} {f['recall@10']:6.3f} {f['mrr']:6.3f}".rjust(22))
        print(f"{kind:11s} {int(first['n']):3d} " + " ".join(cells))
    print(
        "ms/query    "
        + "    "
        + " ".join(f"{results[s]['overall']['ms_per_query']:22.2f}" for s in systems)
    )


def run(json_path: Path | None) -> dict[str, Any]:
    queries = load()
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        catalog_url = f"sqlite:///{tmp}/catalog.sqlite"
        seed_catalog(open_catalog(catalog_url, None).engine)
        sqlite_store = publish_demo(catalog_url, f"sqlite:///{tmp}/index.sqlite")
        results["sqlite"] = score(queries, pipeline_searcher(sqlite_store))
        with pg_database() as pg_url:
            if pg_url is not None:
                pg_store = publish_demo(catalog_url, pg_url)
                results["postgres"] = score(queries, pipeline_searcher(pg_store))
                results["fts5_bm25"] = score(queries, fts5_baseline(sqlite_store))
                for name, searcher in pg_baselines(pg_store).items():
                    results[name] = score(queries, searcher)
                pg_store.engine.dispose()
            else:
                results["fts5_bm25"] = score(queries, fts5_baseline(sqlite_store))
        sqlite_store.engine.dispose()
    print(f"{len(queries)} queries from bench/search_queries.jsonl over the demo catalog")
    print_table(results)
    if json_path is not None:
        json_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


BROAD = ["rock", "pop", "jazz", "metal", "hip hop", "electronic", "the", "love"]


def _percentiles(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "n": len(ordered)}


def latency(store: IndexStore, texts: list[str]) -> dict[str, dict[str, float]]:
    """p50/p95/p99 in ms over the texts, and over broad words: each text's best of 3 searches
    after a warm-up pass (the best of 3 keeps other work on a shared machine out of it)."""
    timings: dict[str, list[float]] = {"queries": [], "broad": []}
    for text in texts + BROAD:
        store.search(text)  # warm-up: caches and prepared plans
    for group, items in (("queries", texts), ("broad", BROAD)):
        for text in items:
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                store.search(text)
                best = min(best, (time.perf_counter() - started) * 1000)
            timings[group].append(best)
    return {group: _percentiles(ms) for group, ms in timings.items()}


def _published(marker: Path, publish: Callable[[], IndexStore]) -> IndexStore:
    """The index `publish` builds, or, when `marker` says a kept index is complete, that index
    opened again (migrated to the current schema by `open_store`)."""
    if marker.exists():
        store = open_store(marker.read_text())
        print(f"reusing the kept index at {marker.read_text()}")
        return store
    started = time.perf_counter()
    store = publish()
    print(
        f"{store.engine.url.render_as_string(hide_password=True)} published in "
        f"{time.perf_counter() - started:.0f}s"
    )
    return store


def run_latency(resources: int, json_path: Path | None, keep: str | None = None) -> dict[str, Any]:
    """A generated catalog of `resources` (bench/generate_catalog.py) published on both
    backends; the labelled query texts and broad genre words timed on each. With `keep`, the
    catalog and both indexes are kept (KEEP_DIR/<keep>, database dp_search_keep_<keep>) and
    reused by the next run with the same name, so only the timing is repeated."""
    from bench.generate_catalog import generate

    texts = [q["query"] for q in load()]
    out: dict[str, Any] = {"resources": resources}
    with ExitStack() as stack:
        if keep:
            tmp = KEEP_DIR / f"{keep}_{resources}"
            tmp.mkdir(parents=True, exist_ok=True)
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        catalog_url = f"sqlite:///{tmp}/catalog.sqlite"
        if not (tmp / "catalog.done").exists():
            generate(catalog_url, resources)
            (tmp / "catalog.done").touch()
        sqlite_url = f"sqlite:///{tmp}/index.sqlite"
        store = _published(tmp / "sqlite.done", lambda: publish_demo(catalog_url, sqlite_url))
        if keep:
            (tmp / "sqlite.done").write_text(sqlite_url)
        out["sqlite"] = latency(store, texts)
        store.engine.dispose()
        with pg_database(f"{keep}_{resources}" if keep else None) as pg_url:
            if pg_url is not None:
                marker = tmp / "postgres.done"
                store = _published(marker, lambda: publish_demo(catalog_url, pg_url))
                if keep:
                    marker.write_text(pg_url)
                out["postgres"] = latency(store, texts)
                store.engine.dispose()
    for backend in ("sqlite", "postgres"):
        for group, f in out.get(backend, {}).items():
            print(
                f"{backend:9s} {group:8s} n={f['n']:4d} p50 {f['p50']:7.2f} ms  "
                f"p95 {f['p95']:7.2f} ms  p99 {f['p99']:7.2f} ms"
            )
    if json_path is not None:
        json_path.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--latency", type=int, metavar="N", help="time lookups on a generated N-resource catalog"
    )
    parser.add_argument(
        "--keep",
        metavar="NAME",
        help="with --latency: keep the catalog and both indexes under NAME and reuse them next "
        f"time (files in {KEEP_DIR}, database dp_search_keep_NAME_N; remove both by hand)",
    )
    args = parser.parse_args()
    if args.latency:
        run_latency(args.latency, args.json, args.keep)
    else:
        run(args.json)


if __name__ == "__main__":
    main()
