"""Where one full partition's time goes: the three stages on a generated catalog, under cProfile.

    .venv/bin/python -m bench.profile_partition --resources 40000 --type track
    .venv/bin/python -m bench.profile_partition --backend sqlite --resources 40000

Runs the stage functions the assets call (no Dagster: its share is measured by bench.peers and
bench.launched), with the garbage collector tuned as a run's `settings` resource tunes it, for
the fullest partition of one resource type, then a no-change rerun, and prints seconds per
stage, resources/s, and the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from pathlib import Path

from bench.generate_catalog import generate
from bench.peers import scratch_database
from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.gc_tuning import DEFAULT_YOUNG_THRESHOLD, tune
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.index_store import open_store
from descriptor_pipeline.raw_stage import extract_raw
from descriptor_pipeline.stages import normalization_context, normalize_partition, publish_partition

RANGE_SIZE = 10_000
CHUNK_SIZE = 5_000


def _run(catalog_url: str, index_url: str, resource_type: str, top: int, gc_threshold: int) -> None:
    """Both runs timed; the full one profiled unless `top` is 0 (cProfile inflates Python)."""
    source = open_catalog(catalog_url)
    store = open_store(index_url)
    starts, _ = source.range_starts(RANGE_SIZE)
    partition = max(
        (DescriptorPartition(resource_type, IdRange(s, s + RANGE_SIZE - 1)) for s in starts),
        key=lambda p: source.count(resource_type, p.id_range),
    )
    context = normalization_context(source)
    tune(gc_threshold)  # as the run process's `settings` resource does; 0 leaves it as is
    profiler = cProfile.Profile()
    seconds: dict[str, float] = {}
    rows = 0
    for label in ("full", "rerun"):
        if label == "full" and top:
            profiler.enable()
        for stage, call in (
            ("raw", lambda: extract_raw(source, store, partition, CHUNK_SIZE)),
            ("normalize", lambda: normalize_partition(store, partition, context, CHUNK_SIZE)),
            ("publish", lambda: publish_partition(store, partition, CHUNK_SIZE)),
        ):
            began = time.perf_counter()
            report = call()
            seconds[f"{label}/{stage}"] = time.perf_counter() - began
            if label == "full" and stage == "raw":
                rows = report.counts.read
        profiler.disable()
    full = sum(v for k, v in seconds.items() if k.startswith("full/"))
    rerun = sum(v for k, v in seconds.items() if k.startswith("rerun/"))
    print(f"partition {partition.key}: {rows} resources")
    for key, value in seconds.items():
        print(f"  {key:<18} {value:7.2f} s")
    print(
        f"  full {full:.2f} s = {rows / full:,.0f} res/s; rerun {rerun:.2f} s = {rerun / full:.1%}"
    )
    if not top:
        return
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=40_000)
    parser.add_argument("--type", default="track")
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--top", type=int, default=25, help="0: time without cProfile")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=DEFAULT_YOUNG_THRESHOLD,
        help="the run process's young-GC threshold (settings.gc_young_threshold); 0: Python's",
    )
    args = parser.parse_args()
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            catalog = f"sqlite:///{Path(tmp) / 'catalog.db'}"
            generate(catalog, args.resources)
            _run(
                catalog,
                f"sqlite:///{Path(tmp) / 'index.db'}",
                args.type,
                args.top,
                args.gc_threshold,
            )
        return
    with scratch_database(args.pg_url, "profile") as url:
        generate(url, args.resources)
        _run(url, url, args.type, args.top, args.gc_threshold)


if __name__ == "__main__":
    main()
