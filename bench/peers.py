"""A peer (dlt) and physical ceilings for the backfill, measured on the same generated catalog.

    .venv/bin/python -m bench.peers --size 100000

Our rows/s mean little alone: these say what a well-known tool does with the same catalog and
how fast PostgreSQL itself can take the same rows on these cores.
- `dlt_peer`: dlt's `sql_database` source into PostgreSQL (merge on id, cursor on updated_at),
  plain and with a light normalization map; first load and no-change rerun (bench/dlt_load.py,
  in its own venv made by bench/setup_dlt.sh).
- `copy_ceiling_plain`: COPY of one document row per resource into an unindexed table.
- `copy_ceiling_index_shape`: the same COPY into the real `descriptor_index` (generated weighted
  tsvector + GIN, trigram GIN, lower(name) btree, unique key), made by the real migrations.
- `set_based_bound`: normalize + build the documents as ONE `INSERT … SELECT` from the catalog
  tables into the real index shape: no Python, no round trips, one core (PostgreSQL runs no
  parallel workers for an INSERT). What a pure-SQL pipeline without per-field rules could reach.

The document rows are built from the catalog by SQL (`documents_sql`), shaped like ours.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import psycopg

from bench.databases import dsn, fresh_database
from bench.sql_documents import DOC_COLUMNS, documents_sql

ROOT = Path(__file__).resolve().parents[1]
SETUP_DLT = ROOT / "bench" / "setup_dlt.sh"
DLT_LOAD = ROOT / "bench" / "dlt_load.py"
DLT_VENV = Path(os.environ.get("DLT_VENV", ROOT / ".venv-dlt"))
RESOURCE_TABLES = ("music_genre", "music_artist", "music_album", "music_track")


# ---------------------------------------------------------------- databases


def admin_url_of(url: str) -> str:
    """The same server's `postgres` database, for CREATE/DROP DATABASE."""
    return dsn(url).rsplit("/", 1)[0] + "/postgres"


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(dsn(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(url: str, purpose: str, migrate: bool = False) -> Iterator[str]:
    """A uniquely named empty database on the same server, dropped afterwards."""
    admin = admin_url_of(url)
    name = f"peers_{purpose}_{os.getpid()}_{secrets.token_hex(3)}"
    scratch = fresh_database(admin, name)
    try:
        if migrate:
            _migrate(scratch)
        yield scratch
    finally:
        drop_database(admin, name)


def _migrate(url: str) -> None:
    """The real index shape, made by the real migrations."""
    from descriptor_pipeline.store_engine import create_engine, run_migrations

    engine = create_engine(url)
    run_migrations(engine)
    engine.dispose()


def count_resources(catalog_url: str) -> int:
    with psycopg.connect(dsn(catalog_url)) as conn:
        return sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in RESOURCE_TABLES)


# ---------------------------------------------------------------- ceilings


def dump_documents(catalog_url: str, out: IO[bytes]) -> dict[str, Any]:
    """COPY the SQL-built documents out to `out` (not part of any ceiling's clock)."""
    started, rows = time.perf_counter(), 0
    with (
        psycopg.connect(dsn(catalog_url)) as conn,
        conn.cursor().copy(f"COPY ({documents_sql()}) TO STDOUT") as cp,
    ):
        for data in cp:
            out.write(data)
            rows += bytes(data).count(b"\n")  # text COPY escapes newlines inside values
    out.flush()
    return {"rows": rows, "bytes": out.tell(), "seconds": round(time.perf_counter() - started, 2)}


def _figures(conn: psycopg.Connection, table: str, seconds: float) -> dict[str, Any]:
    rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    size = conn.execute(f"SELECT pg_total_relation_size('{table}')").fetchone()[0]
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "table_mib": round(size / 2**20, 1),
    }


def _copy_ceiling(
    catalog_url: str, documents: IO[bytes] | None, table: str, create: str | None
) -> dict[str, Any]:
    """Time one COPY of the document rows into `table` of a freshly migrated scratch DB.
    The dump (given, or made here into a temp file on disk) is outside the clock."""
    with tempfile.TemporaryFile() as own, scratch_database(catalog_url, table, True) as url:
        if documents is None:
            documents = own
            dump_documents(catalog_url, documents)
        documents.seek(0)
        with psycopg.connect(dsn(url)) as conn:
            if create:
                conn.execute(create)
                conn.commit()
            started = time.perf_counter()
            with conn.cursor().copy(f"COPY {table} ({DOC_COLUMNS}) FROM STDIN") as cp:
                while block := documents.read(1 << 20):
                    cp.write(block)
            conn.commit()
            return _figures(conn, table, time.perf_counter() - started)


def copy_ceiling_plain(catalog_url: str, documents: IO[bytes] | None = None) -> dict[str, Any]:
    """COPY the document rows into an unindexed table with descriptor_index's column types."""
    create = f"CREATE TABLE plain AS SELECT {DOC_COLUMNS} FROM descriptor_index WITH NO DATA"
    return _copy_ceiling(catalog_url, documents, "plain", create)


def copy_ceiling_index_shape(
    catalog_url: str, documents: IO[bytes] | None = None
) -> dict[str, Any]:
    """COPY the same rows into the migrated descriptor_index: every index maintained."""
    return _copy_ceiling(catalog_url, documents, "descriptor_index", None)


def set_based_bound(catalog_url: str, with_document: bool = True) -> dict[str, Any]:
    """Normalize + build + index as one INSERT … SELECT into a copy of the real index shape.

    Runs in the catalog's database (a statement cannot span databases), into
    `peers_set_bound` made `LIKE descriptor_index INCLUDING ALL` with its own sequence, so a
    published index there is left alone; migrates the database first if it has no index yet.
    `with_document=False` writes the search texts only (empty document, no hashes): the
    tsvector and the indexes still cost in full. The server's own settings apply (JIT too).
    """
    with psycopg.connect(dsn(catalog_url)) as conn:
        migrated = conn.execute("SELECT to_regclass('descriptor_index')").fetchone()[0]
    if migrated is None:
        _migrate(catalog_url)
    resources = count_resources(catalog_url)
    with psycopg.connect(dsn(catalog_url)) as conn:
        conn.execute("DROP TABLE IF EXISTS peers_set_bound")
        conn.execute("CREATE TABLE peers_set_bound (LIKE descriptor_index INCLUDING ALL)")
        conn.execute("CREATE SEQUENCE peers_set_bound_seq OWNED BY peers_set_bound.doc_id")
        conn.execute(
            "ALTER TABLE peers_set_bound ALTER doc_id SET DEFAULT nextval('peers_set_bound_seq')"
        )
        conn.commit()
        started = time.perf_counter()
        conn.execute(f"INSERT INTO peers_set_bound ({DOC_COLUMNS}) {documents_sql(with_document)}")
        conn.commit()
        seconds = time.perf_counter() - started
        out = _figures(conn, "peers_set_bound", seconds)
        out["jit"] = conn.execute("SHOW jit").fetchone()[0]
        conn.execute("DROP TABLE peers_set_bound")
        conn.commit()
    return {**out, "resources": resources, "resources_per_s": round(resources / seconds)}


# ---------------------------------------------------------------- the dlt peer


def ensure_dlt() -> dict[str, Any]:
    """Make .venv-dlt if needed (idempotent); how long that took and whether it did anything."""
    started = time.perf_counter()
    done = subprocess.run(
        ["bash", str(SETUP_DLT)],
        capture_output=True,
        text=True,
        env={**os.environ, "DLT_VENV": str(DLT_VENV)},
    )
    seconds = round(time.perf_counter() - started, 1)
    if done.returncode != 0:
        raise RuntimeError(f"bench/setup_dlt.sh failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {"setup_seconds": seconds, "installed_now": "ready" in done.stderr}


def _dlt_run(catalog_url: str, dest_url: str, normalize: bool) -> dict[str, Any]:
    python, urls = str(DLT_VENV / "bin" / "python"), [dsn(catalog_url), dsn(dest_url)]
    command = [python, str(DLT_LOAD), "--catalog-url", urls[0], "--dest-url", urls[1]]
    started = time.perf_counter()
    done = subprocess.run(
        command + ["--normalize"] * normalize, capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-3000:], "normalize": normalize}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # incl. interpreter start and dlt's imports
    result["process_wall_seconds"] = round(time.perf_counter() - started, 1)
    return result


def dlt_peer(catalog_url: str) -> dict[str, Any]:
    """dlt plain and with the normalization map, each into a fresh schema of a scratch DB."""
    out: dict[str, Any] = ensure_dlt()
    with scratch_database(catalog_url, "dlt") as dest:
        out["plain"] = _dlt_run(catalog_url, dest, normalize=False)
        out["normalize"] = _dlt_run(catalog_url, dest, normalize=True)
    return out


# ---------------------------------------------------------------- the table

LABELS = {
    "dlt.plain": "dlt sql_database, merge + cursor",
    "dlt.normalize": "dlt + normalization map",
    "copy_plain": "COPY, unindexed table",
    "copy_index_shape": "COPY, real index shape (tsvector+GIN+trgm+btree)",
    "set_based": "set-based INSERT … SELECT, real shape",
    "set_based_search_only": "  same, search texts only (no document/hash)",
}


def table(results: dict[str, Any]) -> str:
    """Rows/s for each peer and ceiling, one line each."""
    lines = [f"{'peer / ceiling':50s} {'rows':>9s} {'seconds':>8s} {'rows/s':>8s}  note"]
    for key, label in LABELS.items():
        fig = results.get("dlt", {}).get(key[4:]) if key.startswith("dlt.") else results.get(key)
        if fig is None:
            continue
        if "error" in fig:
            lines.append(f"{label:50s} failed: {fig['error'].splitlines()[-1][:80]}")
            continue
        note = ""
        if "first_load" in fig:
            rerun = fig["no_change_rerun"]["seconds"]
            note = f"no-change rerun {rerun:.2f} s ({fig['rerun_share']:.1%})"
            fig = fig["first_load"]
        elif "resources_per_s" in fig:
            note = f"{fig['resources_per_s']:,} resources/s"
        elif key == "copy_plain" and "documents" in results:
            note = f"documents built by SQL in {results['documents']['seconds']:.1f} s, untimed"
        lines.append(
            f"{label:50s} {fig['rows']:>9,} {fig['seconds']:>8.2f} {fig['rows_per_s']:>8,}  "
            f"{note}".rstrip()
        )
    return "\n".join(lines)


def run_all(catalog_url: str, skip_dlt: bool = False) -> dict[str, Any]:
    """All four on one catalog; the documents are dumped once for both COPY ceilings."""
    results: dict[str, Any] = {}
    if not skip_dlt:
        results["dlt"] = dlt_peer(catalog_url)
    with tempfile.TemporaryFile() as docs:
        results["documents"] = dump_documents(catalog_url, docs)
        results["copy_plain"] = copy_ceiling_plain(catalog_url, docs)
        results["copy_index_shape"] = copy_ceiling_index_shape(catalog_url, docs)
    results["set_based"] = set_based_bound(catalog_url)
    results["set_based_search_only"] = set_based_bound(catalog_url, with_document=False)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    default_url = "postgresql://postgres@127.0.0.1:5432/postgres"
    parser.add_argument("--pg-url", default=os.environ.get("DESCRIPTOR_BENCH_PG_URL", default_url))
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    from bench.generate_catalog import generate

    name = f"peers_catalog_{os.getpid()}_{secrets.token_hex(3)}"
    catalog_url = fresh_database(args.pg_url, name)
    try:
        started = time.perf_counter()
        counts = generate(catalog_url, args.size, args.seed)
        print(
            f"catalog: {sum(counts.values()):,} resources {counts} generated in "
            f"{time.perf_counter() - started:.1f} s",
            flush=True,
        )
        load_before = os.getloadavg()
        results = {"catalog": counts, **run_all(catalog_url, args.skip_dlt)}
        # 2 cores: anything else running skews every figure here, so say how busy it was
        results["machine"] = {
            "cpus": os.cpu_count(),
            "loadavg_1m_before": round(load_before[0], 2),
            "loadavg_1m_after": round(os.getloadavg()[0], 2),
        }
    finally:
        drop_database(admin_url_of(args.pg_url), name)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    print(table(results))
    print(f"machine: {results['machine']}")


if __name__ == "__main__":
    main()
