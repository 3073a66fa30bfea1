"""Render the figures table of docs/benchmarks.md from bench/results/*.json (no hand copying).

.venv/bin/python -m bench.report > /tmp/table.md
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def _checks_share(backfill: dict[str, Any]) -> str:
    """The median share, then each pair's (runs stored before the pairs have none)."""
    pairs = backfill.get("checks_share_of_wall_pairs")
    median = str(backfill["checks_share_of_wall"])
    return f"{median}; {', '.join(map(str, pairs))}" if pairs else median


ROWS: list[tuple[str, Any]] = [
    ("catalog resources", lambda r: f"{sum(r['catalog'].values()):,}"),
    (
        "machine speed probe before / after the size, s (a fixed Python loop; lower is faster)",
        lambda r: " / ".join(map(str, r["speed_probe_seconds"])),
    ),
    (
        "partitions run (with rows) / registered",
        lambda r: f"{r['partitions']} / {r['partitions_registered']}",
    ),
    (
        "**full backfill**, s: assets + checks, real SQLite instance, 2 worker processes, "
        "id ranges packed into runs as a UI backfill packs them",
        lambda r: r["full_backfill"]["seconds"],
    ),
    (
        "runs (id ranges per run)",
        lambda r: (
            f"{r['full_backfill'].get('runs', '-')} "
            f"({r['full_backfill'].get('partitions_per_run', 1)})"
        ),
    ),
    (
        "same, one run per partition (the CLI backfill, the sensors), s",
        lambda r: r["full_backfill"].get("seconds_one_run_per_partition", "-"),
    ),
    (
        "resources/s: ours (production shape)",
        lambda r: f"{r['full_backfill']['resources_per_s']:,}",
    ),
    (
        "same backfill, assets only (checks deselected), s",
        lambda r: r["full_backfill"]["seconds_assets_only"],
    ),
    (
        "checks share of wall time (target ≤ 0.15): median of the pairs; each pair's own",
        lambda r: _checks_share(r["full_backfill"]),
    ),
    (
        "checks share of the runs' step time (inside the last backfill)",
        lambda r: r["full_backfill"].get("checks_share_in_steps", "-"),
    ),
    (
        "resources/s: dlt 1.31 plain load (merge on id, cursor)",
        lambda r: f"{r['peers']['dlt']['plain']['first_load']['rows_per_s']:,}",
    ),
    (
        "resources/s: dlt with a light normalization map",
        lambda r: f"{r['peers']['dlt']['normalize']['first_load']['rows_per_s']:,}",
    ),
    (
        "rows/s: COPY into an unindexed table",
        lambda r: f"{r['peers']['copy_plain']['rows_per_s']:,}",
    ),
    (
        "rows/s: COPY into the real index shape (tsvector + GIN + trigram)",
        lambda r: f"{r['peers']['copy_index_shape']['rows_per_s']:,}",
    ),
    (
        "resources/s: set-based SQL (one INSERT … SELECT, no rules)",
        lambda r: f"{r['peers']['set_based']['resources_per_s']:,}",
    ),
    (
        "rows/s: COPY ceiling of our own final rows, unindexed",
        lambda r: f"{r['ceiling']['rows_per_s']:,}",
    ),
    (
        "resources/s: naive (one task per resource, own commit)",
        lambda r: f"{r['naive']['resources_per_s']:,}",
    ),
    ("**ratio ours / dlt plain** (target ≥ 1.0)", lambda r: r["ratios"]["ours_over_dlt"]),
    ("ratio ours / dlt with normalization", lambda r: r["ratios"]["ours_over_dlt_normalized"]),
    (
        "**ratio ours / COPY into the index shape** (target ≥ 0.5)",
        lambda r: r["ratios"]["ours_over_copy_index_shape"],
    ),
    (
        "**full rebuild through the shadow**, s: the same backfill into a shadow with its keys' "
        "indexes only, then the other indexes built whole and the swap (of which index build)",
        lambda r: (
            f"{r['shadow_rebuild']['seconds']} ({r['shadow_rebuild']['index_build_seconds']})"
        ),
    ),
    (
        "through the shadow: resources/s; ratio / dlt plain; / COPY into the index shape; "
        "/ the full backfill's seconds",
        lambda r: (
            f"{r['shadow_rebuild']['resources_per_s']:,}; "
            f"{r['ratios']['shadow_rebuild_over_dlt']}; "
            f"{r['ratios']['shadow_rebuild_over_copy_index_shape']}; "
            f"{r['ratios']['shadow_rebuild_over_full']}"
        ),
    ),
    ("ratio ours / COPY unindexed", lambda r: r["ratios"]["ours_over_copy_plain"]),
    ("ratio ours / set-based SQL", lambda r: r["ratios"]["ours_over_set_based"]),
    ("ratio ours / naive (target ≥ 10)", lambda r: r["ratios"]["ours_over_naive"]),
    (
        "dlt no-change rerun as share of its load",
        lambda r: r["peers"]["dlt"]["plain"]["rerun_share"],
    ),
    (
        "**no-change rerun** as the full-refresh schedule does it (freshness gate), s",
        lambda r: r["no_change_rerun"]["seconds"],
    ),
    (
        "partitions the gate found not current / examined",
        lambda r: (
            f"{r['no_change_rerun']['partitions_run']} / "
            f"{r['no_change_rerun']['partitions_examined']}"
        ),
    ),
    ("rows written by the rerun", lambda r: r["no_change_rerun"]["rows_written"]),
    ("rerun as share of full (target ≤ 0.05)", lambda r: r["no_change_rerun"]["share_of_full"]),
    (
        "forced rerun of every partition through the job, s (share of full)",
        lambda r: (
            f"{r['no_change_rerun']['forced_seconds']} "
            f"({r['no_change_rerun']['forced_share_of_full']})"
        ),
    ),
    (
        "**incremental**: 1,000 changes → index, s (target < 10)",
        lambda r: r["incremental"]["seconds_direct_changes"],
    ),
    (
        "incremental incl. the genre rename's fan-out, s",
        lambda r: r["incremental"]["seconds_incl_fanout"],
    ),
    ("artists embedding the renamed genre", lambda r: r["incremental"]["genre_fanout_artists"]),
    ("runs (= partitions) for the 1,000 changes", lambda r: f"{r['incremental']['runs']}"),
    (
        "**lookup** p50 / p95 / p99, ms (target p95 < 20)",
        lambda r: f"{r['lookup']['p50_ms']} / {r['lookup']['p95_ms']} / {r['lookup']['p99_ms']}",
    ),
    ("lookup queries/s, 8 concurrent clients", lambda r: r["lookup"]["qps_8_clients"]),
    (
        "**peak RSS** of one 10k-row partition run with checks, MiB",
        lambda r: r["peak_rss_mib_one_partition"],
    ),
    (
        "peak RSS without checks, MiB; ratio (target ≤ 1.2)",
        lambda r: (
            f"{r['peak_rss_mib_one_partition_no_checks']}; "
            f"{r['ratios']['rss_with_over_without_checks']}"
        ),
    ),
    (
        "peak RSS of a process that only loads the code, without / with GX imported, MiB; "
        "the ratio above less that fixed GX import",
        lambda r: (
            f"{r['peak_rss_mib_loaded_code']} / {r['peak_rss_mib_loaded_code_and_gx']}; "
            f"{r['ratios']['rss_with_over_without_checks_less_gx_import']}"
            if "peak_rss_mib_loaded_code" in r
            else "—"
        ),
    ),
    (
        "index table on disk (heap + indexes), MiB",
        lambda r: (
            f"{r['disk']['index_table_total_mib']} "
            f"({r['disk']['heap_mib']} + {r['disk']['indexes_mib']})"
        ),
    ),
    (
        "**scaling**: resources/s with 1 / 2 / 4 concurrent runs",
        lambda r: " / ".join(f"{r['scaling'][n]['resources_per_s']:,}" for n in ("1", "2", "4")),
    ),
]


def load() -> dict[int, dict[str, Any]]:
    return {
        int(p.stem.split("_")[1]): json.loads(p.read_text())
        for p in sorted(RESULTS.glob("bench_*.json"))
    }


def _cell(get: Any, result: dict[str, Any]) -> str:
    try:
        return str(get(result))
    except (KeyError, TypeError):  # e.g. a run with --no-scaling, or an older result file
        return "—"


def table(results: dict[int, dict[str, Any]]) -> str:
    sizes = sorted(results)
    lines = [
        "| | " + " | ".join(f"{s:,}" for s in sizes) + " |",
        "| --- |" + " ---: |" * len(sizes),
    ]
    for label, get in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(get, results[s]) for s in sizes) + " |")
    return "\n".join(lines)


def main() -> None:
    results = load()
    machine = next(iter(results.values()))["machine"]
    print(table(results))
    print(
        f"\nMachine: {machine['cpus']} cores, Python {machine['python']}, PostgreSQL "
        f"{machine['postgres']}, {machine['platform']}; run {machine['when'][:16]} UTC."
    )


if __name__ == "__main__":
    main()
