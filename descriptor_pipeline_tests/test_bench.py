"""The benchmark's inputs and outputs stay honest: a deterministic generator, a true doc."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import sqlalchemy as sa

from bench.generate_catalog import generate
from bench.report import RESULTS, load, table
from bench.time_breakdown import OUTSIDE, categorize
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
    run = "main;_materialize (bench/partition_runs.py:90);execute (dagster/x.py:1)"
    samples = [
        # the checks' observer runs inside a stage: it counts as checks
        (f"{run};normalize_partition (s.py:1);LayerValidator.__call__ (f.py:2)", 2),
        (f"{run};normalize_partition (s.py:1);normalize_rows (n.py:3)", 3),
        (f"{run};extract_raw (r.py:1);CatalogSource.fingerprint (c.py:4)", 1),
        (f"{run};store_event (dagster/sqlite.py:5)", 4),
        ("main;_worker_init (bench/partition_runs.py:50)", 90),  # outside any run: not counted
    ]
    assert categorize(samples) == {
        OUTSIDE: 0.4,
        "normalize: rules (pure Python)": 0.3,
        "checks: frames of the rows written": 0.2,
        "raw: catalog read + fingerprint": 0.1,
    }


def test_benchmarks_doc_shows_the_stored_time_breakdown() -> None:
    stored = json.loads((RESULTS / "time_breakdown.json").read_text(encoding="utf-8"))
    assert breakdown_table(stored) in DOCS.read_text(encoding="utf-8"), (
        "run: python -m bench.time_breakdown --out bench/results/time_breakdown.json"
    )
