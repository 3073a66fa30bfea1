"""The benchmark's inputs and outputs stay honest: a deterministic generator, a true doc."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import sqlalchemy as sa

from bench.generate_catalog import generate
from bench.report import RESULTS, load, table
from bench.time_breakdown import OUTSIDE, categorize, top_outside
from bench.time_breakdown import table as breakdown_table

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def _digest(url: str) -> str:
    engine = sa.create_engine(url)
    digest = hashlib.sha256()
    with engine.connect() as conn:
        for table_name in ("music_artist", "music_track", "music_artist_genres"):
            for row in conn.execute(sa.text(f"SELECT * FROM {table_name} ORDER BY 1")):
                digest.update(repr(tuple(row)).encode())
    engine.dispose()
    return digest.hexdigest()


def test_generator_is_deterministic_and_shaped_like_a_catalog(tmp_path: Path) -> None:
    a, b = (f"sqlite:///{tmp_path / name}" for name in ("a.sqlite", "b.sqlite"))
    counts = generate(a, 8000, seed=7)
    assert counts == generate(b, 8000, seed=7)
    assert _digest(a) == _digest(b)
    assert sum(counts.values()) == 8000 and counts["genre"] == 1812  # the real genre tree
    assert counts["track"] > counts["album"] > counts["artist"]
    engine = sa.create_engine(a)
    with engine.connect() as conn:
        artists = conn.execute(sa.text("SELECT count(*) FROM music_artist")).scalar()
        with_genre = conn.execute(
            sa.text("SELECT count(DISTINCT artist_id) FROM music_artist_genres")
        ).scalar()
        no_enrichment = conn.execute(
            sa.text("SELECT count(*) FROM music_track WHERE enrichment_data IS NULL")
        ).scalar()
    engine.dispose()
    assert 0.25 < 1 - with_genre / artists < 0.45  # about a third of artists have no genre
    assert no_enrichment > 0.4 * counts["track"]


def test_benchmarks_doc_shows_the_stored_results() -> None:
    rendered = table(load())
    assert rendered in DOCS.read_text(encoding="utf-8"), "run: python -m bench.report"


def test_time_breakdown_puts_each_sample_in_its_first_category() -> None:
    # frames as py-spy writes them (`--format raw`): function (path:line), root first
    run = (
        "<module> (bench/time_breakdown.py:230);_materialize (bench/partition_runs.py:112);"
        "execute_in_process (dagster/_core/definitions/job_definition.py:732)"
    )
    raw = f"{run};raw_descriptors (descriptor_pipeline/defs/assets.py:281)"
    stage = (
        f"{raw};_run (descriptor_pipeline/defs/assets.py:211);"
        "extract_raw (descriptor_pipeline/raw_stage.py:195)"
    )
    publish = (
        f"{run};publish_partition (descriptor_pipeline/stages.py:299);"
        "IndexStore.sync_chunk (descriptor_pipeline/index_store.py:107);"
        "copy_upsert (descriptor_pipeline/index_store_postgres.py:29)"
    )
    events = "SqliteEventLogStorage.store_event (dagster/_core/storage/event_log/sqlite/x.py:260)"
    samples = [
        # GX under the raw check: GX validation, not the check's other work
        (
            f"{raw};raw_results (descriptor_pipeline/defs/checks.py:235);"
            "_validate (descriptor_pipeline/defs/checks.py:215);"
            "validate (descriptor_pipeline/quality/suites.py:310);"
            "Validator.graph_validate (great_expectations/validator/validator.py:598)",
            2,
        ),
        # the checks' observer runs inside a stage: it counts as checks
        (
            f"{run};normalize_partition (descriptor_pipeline/stages.py:218);"
            "LayerValidator.__call__ (descriptor_pipeline/quality/frames.py:219)",
            1,
        ),
        # a ledger write is not a catalog read
        (f"{stage};PartitionLedger.record_fingerprint (descriptor_pipeline/x.py:50)", 1),
        (f"{stage};CatalogSource.fingerprint (descriptor_pipeline/catalog.py:232)", 1),
        (
            f"{publish};Copy.__exit__ (psycopg/_copy.py:60);Copy.finish (psycopg/_copy.py:200);"
            "Connection.wait (psycopg/connection.py:479)",
            1,
        ),
        (f"{publish};Copy.write_row (psycopg/_copy.py:120)", 1),
        (f"{raw};under_all (descriptor_pipeline/partition_lock.py:158)", 1),
        (f"{run};{events}", 2),
        ("<module> (bench/time_breakdown.py:230);_worker_init (bench/partition_runs.py:50)", 90),
    ]
    assert categorize(samples) == {
        "checks: GX validation": 0.2,
        "checks: frames of the rows written": 0.1,
        "raw: other": 0.1,
        "raw: catalog read + fingerprint": 0.1,
        "publish: COPY into the index, waiting for the server": 0.1,
        "publish: COPY into the index, the rest": 0.1,
        "this project's code outside the stages": 0.1,
        OUTSIDE: 0.2,
    }
    assert top_outside(samples) == {"SqliteEventLogStorage.store_event": 0.2}


def test_benchmarks_doc_shows_the_stored_time_breakdown() -> None:
    stored = json.loads((RESULTS / "time_breakdown.json").read_text(encoding="utf-8"))
    assert breakdown_table(stored) in DOCS.read_text(encoding="utf-8"), (
        "run: python -m bench.time_breakdown --out bench/results/time_breakdown.json"
    )
