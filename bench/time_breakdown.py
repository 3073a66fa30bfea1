"""Where a production-shape run's wall time goes, by stage and by kind of work.

    .venv/bin/pip install -e '.[profile]'      # py-spy, the sampling profiler
    .venv/bin/python -m bench.time_breakdown --resources 40000

One packed run as a UI backfill packs it (the first `--per-run` track id ranges, the real assets
and their checks, on a real SQLite-backed instance, as `bench.partition_runs` runs it) is repeated
`--repeats` times in a child process under `py-spy record --idle`: wall-clock samples, waits on
PostgreSQL included. cProfile suits neither question: it inflates Python about fourfold and puts
a wait on the server's COPY at the call that waits. Each sample is put in the first category of
`CATEGORIES` whose frames it holds; the shares print, and `--out` keeps them as JSON.

The run is alone on the machine, so PostgreSQL has the other core; in the timed backfill two runs
share both cores with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.peers import _migrate, scratch_database

ROOT = Path(__file__).resolve().parents[1]
ROOT_FRAME = "_materialize (bench/partition_runs.py"

# (label, frames that must all be on the sample's stack; "a|b" is either). First match wins:
# the checks' row observer runs inside the stages, so the checks come first.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("checks: GX validation", ("validate (descriptor_pipeline/quality/suites.py",)),
    ("checks: frames of the rows written", ("LayerValidator.__call__",)),
    ("checks: reconciliation reads", ("_reconciliation_frame",)),
    ("checks: drift, quarantine, results", ("_results (descriptor_pipeline/defs/checks.py",)),
    ("raw: catalog read + fingerprint", ("extract_raw (", "iter_chunks (|fingerprint (")),
    ("raw: validation + hash", ("extract_raw (", "validate_raw (")),
    ("raw: stage write", ("extract_raw (", "sync_chunk (")),
    ("raw: other", ("extract_raw (",)),
    ("normalize: rules (pure Python)", ("normalize_partition (", "normalize_rows (")),
    ("normalize: stage write", ("normalize_partition (", "sync_chunk (")),
    ("normalize: stage read", ("normalize_partition (", "rows_to_redo (|_stage_pages (")),
    ("normalize: other", ("normalize_partition (",)),
    ("publish: documents (pure Python)", ("publish_partition (", "document_from_stored (")),
    ("publish: COPY into the index", ("publish_partition (", "sync_chunk (")),
    ("publish: stage read", ("publish_partition (", "rows_to_redo (|_stage_pages (")),
    ("publish: other", ("publish_partition (",)),
]
OUTSIDE = "Dagster and the run's own bookkeeping (outside the stages)"


def categorize(samples: list[tuple[str, int]]) -> dict[str, float]:
    """Each category's share of the samples taken inside a run (`ROOT_FRAME`), largest first."""
    counts: Counter[str] = Counter()
    for stack, n in samples:
        at = stack.find(ROOT_FRAME)
        if at < 0:
            continue
        inside = stack[at:]
        label = next(
            (
                name
                for name, needs in CATEGORIES
                if all(any(alt in inside for alt in need.split("|")) for need in needs)
            ),
            OUTSIDE,
        )
        counts[label] += n
    total = sum(counts.values())
    if not total:
        raise RuntimeError("py-spy took no sample inside a run")
    return {k: round(v / total, 3) for k, v in counts.most_common()}


def read_raw(path: Path) -> list[tuple[str, int]]:
    """py-spy's `--format raw`: one collapsed stack and its sample count per line."""
    out = []
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        out.append((stack, int(n)))
    return out


def _worker(url: str, per_run: int, repeats: int) -> None:
    """The profiled child: the packed run `repeats` times on empty pipeline tables."""
    from bench import partition_runs as runs
    from bench.databases import reset_pipeline_tables

    partitions, _ = runs.partitions_for(url)
    keys = sorted({k for _, k in partitions})
    group = runs.packed([p for p in partitions if p[0] == "track"], per_run)[0]
    runs._worker_init(url, keys)
    runs._ready(0)
    seconds = []
    for _ in range(repeats):
        reset_pipeline_tables(url)
        started = time.perf_counter()
        result = runs._materialize(group)
        if not result["success"]:
            raise RuntimeError(f"the run failed: {result}")
        seconds.append(time.perf_counter() - started)
    rows = int(result["raw_descriptors"].get("rows_read", 0) or 0)
    print(json.dumps({"seconds": seconds, "partitions": len(group), "rows_read": rows}))


def measure(pg_url: str, resources: int, per_run: int, repeats: int, rate: int) -> dict[str, Any]:
    from bench.generate_catalog import generate

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -e '.[profile]'")
    with scratch_database(pg_url, "breakdown") as url, tempfile.TemporaryDirectory() as tmp:
        catalog = generate(url, resources)
        _migrate(url)
        raw = Path(tmp) / "samples.txt"
        record = [py_spy, "record", "--idle", "-r", str(rate), "-f", "raw", "-o", str(raw), "--"]
        child = [sys.executable, "-m", "bench.time_breakdown", "--worker", url]
        child += ["--per-run", str(per_run), "--repeats", str(repeats)]
        done = subprocess.run(
            [*record, *child], cwd=ROOT, check=True, capture_output=True, text=True, timeout=3600
        )
        # the child's one JSON line; py-spy writes its own lines to the same stdout
        runs = json.loads(next(x for x in reversed(done.stdout.splitlines()) if x[:1] == "{"))
        shares = categorize(read_raw(raw))
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "catalog": catalog,
        "run": f"{runs['partitions']} track id ranges in one run, assets and checks",
        "seconds_per_run": [round(s, 2) for s in runs["seconds"]],
        "seconds_median": round(statistics.median(runs["seconds"]), 2),
        "sample_rate_hz": rate,
        "shares": shares,
    }


def _commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def table(result: dict[str, Any]) -> str:
    lines = ["| where the run's wall time goes | share |", "| --- | ---: |"]
    lines += [f"| {name} | {share:.1%} |" for name, share in result["shares"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=40_000)
    parser.add_argument("--per-run", type=int, default=4, help="id ranges packed into the run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "DESCRIPTOR_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--out", type=Path, help="keep the result as JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # the profiled child
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.per_run, args.repeats)
        return
    result = measure(args.pg_url, args.resources, args.per_run, args.repeats, args.rate)
    print(f"{result['run']}: {result['seconds_per_run']} s (commit {result['commit']})")
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
