"""What the backfill's rate is set against on the same database: the COPY ceiling (the published
rows copied into an unindexed table, nothing normalized or indexed) and the naive per-resource
baseline (bench/naive.py on a sample with the catalog's own mix of types)."""

from __future__ import annotations

import random
import tempfile
import time

import psycopg

from bench.databases import dsn
from bench.naive import run_naive
from descriptor_pipeline.id_ranges import RESOURCE_TYPES


def copy_ceiling(url: str) -> tuple[float, int]:
    """COPY the published rows (no normalization, no index) into an unindexed table."""
    columns = (
        "resource_type, resource_id, document_key, name, display_text, search_name, "
        "search_aliases, search_facets, search_description, document, hidden, "
        "normalization_version, content_hash, input_hash, source_updated_at, published_at"
    )
    # the dump goes to disk: the harness stays bounded too
    with tempfile.TemporaryFile() as buffer, psycopg.connect(dsn(url)) as conn:
        with conn.cursor().copy(f"COPY (SELECT {columns} FROM descriptor_index) TO STDOUT") as cp:
            for data in cp:
                buffer.write(data)
        conn.execute("DROP TABLE IF EXISTS ceiling_index")
        conn.execute(
            f"CREATE TABLE ceiling_index AS SELECT {columns} FROM descriptor_index WITH NO DATA"
        )
        conn.commit()
        started = time.perf_counter()
        buffer.seek(0)
        with conn.cursor().copy(f"COPY ceiling_index ({columns}) FROM STDIN") as cp:
            while block := buffer.read(1 << 20):
                cp.write(block)
        conn.commit()
        seconds = time.perf_counter() - started
        rows = conn.execute("SELECT count(*) FROM ceiling_index").fetchone()[0]
        conn.execute("DROP TABLE ceiling_index")
    return seconds, rows


def naive_rate(url: str, sample_size: int, seed: int) -> float:
    from descriptor_pipeline.catalog import CatalogSource
    from descriptor_pipeline.stages import normalization_context
    from descriptor_pipeline.store_engine import create_engine

    engine = create_engine(url)
    ctx = normalization_context(CatalogSource(engine))
    rng = random.Random(seed)
    with psycopg.connect(dsn(url)) as conn:
        counts = {
            t: conn.execute(f"SELECT count(*) FROM music_{t}").fetchone()[0] for t in RESOURCE_TYPES
        }
    total = sum(counts.values())
    sample = []
    for t in RESOURCE_TYPES:  # the catalog's own mix of types
        n = max(1, sample_size * counts[t] // total)
        sample += [(t, rng.randint(1, counts[t])) for _ in range(n)]
    seconds = run_naive(dsn(url), sample, ctx)
    engine.dispose()
    return len(sample) / seconds
