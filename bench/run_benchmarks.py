"""Benchmarks on PostgreSQL, measured side by side in one run; prints figures and ratios.

    .venv/bin/python -m bench.run_benchmarks --sizes 100000 1000000

For each size: a fresh database with a generated catalog (bench/generate_catalog.py), then
1. full backfill through the real Dagster assets (in-process `dagster.materialize`, one run per
   partition, N worker processes) vs the COPY ceiling and the naive per-resource baseline;
2. no-change rerun; 3. incremental refresh of 1,000 changes (with a genre rename that fans out)
through the real sensors; 4. lookup latency and 8-client throughput; 5. peak RSS of one
partition run and index size; 6. throughput vs concurrent partition runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.baselines import copy_ceiling, naive_rate
from bench.databases import count_index, dsn, fresh_database, reset_pipeline_tables
from bench.footprint import peak_rss_of_loaded_code, peak_rss_of_one_partition, sizes_on_disk
from bench.generate_catalog import generate

# the worker functions are also called from here: by the peak-RSS processes (bench/footprint.py)
# and as docs/benchmarks.md names them (bench.run_benchmarks._materialize)
from bench.partition_runs import _materialize as _materialize
from bench.partition_runs import _ready as _ready
from bench.partition_runs import _worker_init as _worker_init
from bench.partition_runs import (
    freshness_gate,
    paired_backfills,
    partitions_for,
    run_partitions,
    shadow_rebuild,
    written,
)
from bench.refresh_and_lookups import incremental, lookups

RESULTS = Path(__file__).parent / "results"


# ---------------------------------------------------------------- one size


def _ratio(ours: float, theirs: float | None) -> float | None:
    return round(ours / theirs, 3) if theirs else None


def _dlt_rate(peers: dict[str, Any], mode: str) -> float | None:
    return peers.get("dlt", {}).get(mode, {}).get("first_load", {}).get("rows_per_s")


def bench_size(
    admin_url: str,
    size: int,
    seed: int,
    workers: int,
    naive_sample: int,
    scaling: bool,
    per_run: int = 4,
    repeats: int = 3,
) -> dict[str, Any]:
    from descriptor_pipeline.store_engine import create_engine, run_migrations

    url = fresh_database(admin_url, f"bench_{size}")
    out: dict[str, Any] = {"resources_requested": size}
    t = time.perf_counter()
    out["catalog"] = generate(url, size, seed)
    out["generate_seconds"] = round(time.perf_counter() - t, 1)
    engine = create_engine(url)
    run_migrations(engine)
    engine.dispose()
    partitions, registered = partitions_for(url)
    resources = sum(out["catalog"].values())
    out["partitions"] = len(partitions)
    out["partitions_registered"] = registered

    # one run per partition (what the CLI's backfill and the sensors launch), then the packed
    # backfill as a UI backfill packs id ranges into runs: assets only (checks deselected) and
    # the production shape in turn, `repeats` times; the medians are the figures
    seconds_single, _ = run_partitions(url, partitions, workers)
    samples_assets, samples, results, failed = paired_backfills(
        url, partitions, workers, per_run, repeats
    )
    seconds, seconds_assets = statistics.median(samples), statistics.median(samples_assets)
    pair_shares = [1 - a / f for a, f in zip(samples_assets, samples, strict=True)]
    published = count_index(url)
    checks_seconds = sum(
        float(r[a].get("checks_seconds", 0.0))
        for r in results
        for a in ("raw_descriptors", "normalized_descriptors", "descriptor_index")
    )
    out["full_backfill"] = {
        "seconds": round(seconds, 1),
        "workers": workers,
        "resources_per_s": round(resources / seconds),
        "documents_published": published,
        "rows_written_index": written(results),
        "failed_runs": failed,  # of every backfill of the pairs
        "partitions_per_run": per_run,
        "runs": len(results),
        "seconds_one_run_per_partition": round(seconds_single, 1),
        "seconds_assets_only": round(seconds_assets, 1),
        "repeats": repeats,
        "seconds_samples": [round(s, 1) for s in samples],
        "seconds_assets_only_samples": [round(s, 1) for s in samples_assets],
        # the median of each pair's own share (pairs ran back to back, so they share the
        # machine's state); the pairs, in the order run, show how far one alone could be off
        "checks_share_of_wall": round(statistics.median(pair_shares), 3),
        "checks_share_of_wall_pairs": [round(x, 3) for x in pair_shares],
        "checks_share_of_wall_of_medians": round(1 - seconds_assets / seconds, 3),
        # the same share from inside the last production-shape backfill's runs: building
        # facts + validating, over run time
        "checks_share_in_steps": round(checks_seconds / (samples[-1] * workers), 3),
    }
    ceiling_s, ceiling_rows = copy_ceiling(url)
    out["ceiling"] = {
        "seconds": round(ceiling_s, 2),
        "rows": ceiling_rows,
        "rows_per_s": round(ceiling_rows / ceiling_s),
    }
    rate = naive_rate(url, naive_sample, seed)
    out["naive"] = {
        "sample": naive_sample,
        "resources_per_s": round(rate, 1),
        "projected_full_seconds": round(resources / rate),
    }
    # the no-change rerun as the weekly full refresh does it: the freshness gate (catalog
    # fingerprint + stage tokens per partition), then runs for what is not current; and the
    # forced rerun of every partition through the job (a UI backfill of everything)
    gate_seconds, stale = freshness_gate(url, partitions)
    seconds2, results2 = (
        run_partitions(url, stale, workers, per_run=per_run) if stale else (0.0, [])
    )
    forced_seconds, forced = run_partitions(url, partitions, workers, per_run=per_run)
    stage_assets = ("raw_descriptors", "normalized_descriptors", "descriptor_index")
    out["no_change_rerun"] = {
        "seconds": round(gate_seconds + seconds2, 2),
        "gate_seconds": round(gate_seconds, 2),
        "partitions_examined": len(partitions),
        "partitions_run": len(stale),
        "rows_written": sum(written(results2, a) for a in stage_assets) if results2 else 0,
        "share_of_full": round((gate_seconds + seconds2) / seconds, 3),
        "forced_seconds": round(forced_seconds, 1),
        "forced_rows_written": sum(written(forced, a) for a in stage_assets),
        "forced_share_of_full": round(forced_seconds / seconds, 3),
    }
    from bench.peers import run_all

    out["peers"] = run_all(url)
    out["incremental"] = incremental(url, seed)
    out["lookup"] = lookups(url, seed)
    out["disk"] = sizes_on_disk(url)
    out["peak_rss_mib_one_partition"] = round(peak_rss_of_one_partition(url), 1)
    out["peak_rss_mib_one_partition_no_checks"] = round(
        peak_rss_of_one_partition(url, checks=False), 1
    )
    # what no chunk size changes: the code a run loads, with and without Great Expectations
    out["peak_rss_mib_loaded_code"] = round(peak_rss_of_loaded_code(url, checks=False), 1)
    out["peak_rss_mib_loaded_code_and_gx"] = round(peak_rss_of_loaded_code(url, checks=True), 1)
    # after every figure that reads the live table (the scaling phase resets its own tables):
    # the swap leaves another table live; one rebuild against the backfills' median, unpaired
    out["shadow_rebuild"] = shadow_rebuild(url, partitions, workers, per_run)
    out["shadow_rebuild"]["resources_per_s"] = round(resources / out["shadow_rebuild"]["seconds"])
    if scaling:
        track_parts = [p for p in partitions if p[0] == "track"][:8]
        out["scaling"] = {}
        for n in (1, 2, 4):
            reset_pipeline_tables(url)
            s, res = run_partitions(url, track_parts, n)
            rows = sum(int(r["raw_descriptors"]["rows_read"]) for r in res)
            out["scaling"][str(n)] = {"seconds": round(s, 1), "resources_per_s": round(rows / s)}
    ours = out["full_backfill"]["resources_per_s"]
    peers = out["peers"]
    out["ratios"] = {
        "ours_over_ceiling": round(ours / out["ceiling"]["rows_per_s"], 3),
        "ours_over_naive": round(ours / out["naive"]["resources_per_s"], 1),
        "ours_over_dlt": _ratio(ours, _dlt_rate(peers, "plain")),
        "ours_over_dlt_normalized": _ratio(ours, _dlt_rate(peers, "normalize")),
        "ours_over_copy_plain": _ratio(ours, peers.get("copy_plain", {}).get("rows_per_s")),
        "ours_over_copy_index_shape": _ratio(
            ours, peers.get("copy_index_shape", {}).get("rows_per_s")
        ),
        "ours_over_set_based": _ratio(ours, peers.get("set_based", {}).get("resources_per_s")),
        # the same from-empty build through a shadow whose GIN indexes are built once
        "shadow_rebuild_over_dlt": _ratio(
            out["shadow_rebuild"]["resources_per_s"], _dlt_rate(peers, "plain")
        ),
        "shadow_rebuild_over_copy_index_shape": _ratio(
            out["shadow_rebuild"]["resources_per_s"],
            peers.get("copy_index_shape", {}).get("rows_per_s"),
        ),
        "shadow_rebuild_over_full": round(
            out["shadow_rebuild"]["seconds"] / out["full_backfill"]["seconds"], 3
        ),
        "rss_with_over_without_checks": round(
            out["peak_rss_mib_one_partition"] / out["peak_rss_mib_one_partition_no_checks"], 2
        ),
        # the same ratio without Great Expectations' import, a fixed cost per process
        "rss_with_over_without_checks_less_gx_import": round(
            (
                out["peak_rss_mib_one_partition"]
                - (out["peak_rss_mib_loaded_code_and_gx"] - out["peak_rss_mib_loaded_code"])
            )
            / out["peak_rss_mib_one_partition_no_checks"],
            2,
        ),
    }
    return out


def speed_probe(rounds: int = 3) -> float:
    """Seconds of a fixed pure-Python loop, best of `rounds`: how fast this machine was at
    that moment. The same commit's backfill took 23.0 and 13.9 s a quarter of an hour apart on a
    shared 2-core machine; the probe before and after each size says whether the machine
    moved during it (lower is faster)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        sum(i * i for i in range(8_000_000))
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def _at_least_one(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"a whole number >= 1, not {value!r}")
    return int(value)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "DESCRIPTOR_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--naive-sample", type=int, default=2000)
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument(
        "--per-run",
        type=int,
        default=4,
        help="id ranges per run, as a UI backfill packs them (PARTITIONS_PER_BACKFILL_RUN)",
    )
    parser.add_argument(
        "--repeats",
        type=_at_least_one,
        default=3,
        help="packed backfills with and without the checks, in turn; medians are reported",
    )
    args = parser.parse_args()
    machine = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "when": datetime.now(UTC).isoformat(),
    }
    with psycopg.connect(dsn(args.pg_url)) as conn:
        machine["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
    results = {}
    for size in args.sizes:
        print(f"--- {size:,} resources", flush=True)
        probe_before = speed_probe()
        results[f"{size:,}"] = bench_size(
            args.pg_url,
            size,
            args.seed,
            args.workers,
            args.naive_sample,
            not args.no_scaling,
            args.per_run,
            args.repeats,
        )
        results[f"{size:,}"]["speed_probe_seconds"] = [probe_before, speed_probe()]
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"bench_{size}.json").write_text(
            json.dumps({"machine": machine, **results[f"{size:,}"]}, indent=2)
        )
    print(f"machine: {machine}")
    from bench.report import load, table

    print(table(load()))


if __name__ == "__main__":
    main()
