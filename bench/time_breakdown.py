"""Where a production-shape run's wall time goes, by stage and by kind of work.

    .venv/bin/pip install -e '.[profile]'      # py-spy, the sampling profiler
    .venv/bin/python -m bench.time_breakdown --resources 40000

One packed run as a UI backfill packs it (the first `--per-run` track id ranges, the real assets
and their checks, on a real SQLite-backed instance, as `bench.partition_runs` runs it) is repeated
`--repeats` times in a child process without a sampler (the run's own seconds), then as often in
another child under `py-spy record --idle`: wall-clock samples, waits on PostgreSQL included.
cProfile suits neither question: it inflates this project's per-row Python about fourfold and
puts a wait on the server's COPY at the call that waits. py-spy pauses the process for each sample,
which lengthens the code that runs and not a wait on the server: the shares lean toward code.
Each sample is put in the first category of `CATEGORIES` whose frames it holds; the shares print,
and `--out` keeps them as JSON, with the Dagster functions that took the most samples.

The run is alone on the machine, so PostgreSQL has the other core; in the timed backfill two runs
share both cores with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    (
        "checks: drift, quarantine, results",
        ("raw_results (|normalized_results (|index_results (",),
    ),
    (
        "raw: catalog read + fingerprint",
        ("extract_raw (", "iter_chunks (|CatalogSource.fingerprint ("),
    ),
    ("raw: validation + hash", ("extract_raw (", "validate_raw (")),
    ("raw: stage write", ("extract_raw (", "sync_chunk (")),
    ("raw: other", ("extract_raw (",)),
    ("normalize: rules (pure Python)", ("normalize_partition (", "normalize_rows (")),
    ("normalize: stage write", ("normalize_partition (", "sync_chunk (")),
    ("normalize: stage read", ("normalize_partition (", "rows_to_redo (|_stage_pages (")),
    ("normalize: other", ("normalize_partition (",)),
    ("publish: documents (pure Python)", ("publish_partition (", "document_from_stored (")),
    (
        "publish: COPY into the index, waiting for the server",
        ("publish_partition (", "sync_chunk (", "Copy.finish (", "Connection.wait ("),
    ),
    ("publish: COPY into the index, the rest", ("publish_partition (", "sync_chunk (")),
    ("publish: stage read", ("publish_partition (", "rows_to_redo (|_stage_pages (")),
    ("publish: other", ("publish_partition (",)),
    # the assets' own code around the stages: partition locks, counts, the rules' context
    ("this project's code outside the stages", ("(descriptor_pipeline/",)),
]
OUTSIDE = "Dagster's own work (events, storage, steps)"


def _inside_run(stack: str) -> str | None:
    at = stack.find(ROOT_FRAME)
    return stack[at:] if at >= 0 else None


def _label(inside: str) -> str:
    """The first category whose frames are all on the stack of a sample inside a run."""
    return next(
        (
            name
            for name, needs in CATEGORIES
            if all(any(alt in inside for alt in need.split("|")) for need in needs)
        ),
        OUTSIDE,
    )


def categorize(samples: list[tuple[str, int]]) -> dict[str, float]:
    """Each category's share of the samples taken inside a run (`ROOT_FRAME`), largest first."""
    counts: Counter[str] = Counter()
    for stack, n in samples:
        inside = _inside_run(stack)
        if inside is not None:
            counts[_label(inside)] += n
    total = sum(counts.values())
    if not total:
        raise RuntimeError("py-spy took no sample inside a run")
    return {k: round(v / total, 3) for k, v in counts.most_common()}


def top_outside(samples: list[tuple[str, int]], top: int = 5) -> dict[str, float]:
    """Of the samples in `OUTSIDE`, the share of the run under each of the `top` Dagster
    functions nearest the leaf (what Dagster was doing, by name)."""
    counts: Counter[str] = Counter()
    total = 0
    for stack, n in samples:
        inside = _inside_run(stack)
        if inside is None:
            continue
        total += n
        frames = [f for f in inside.split(";") if "dagster/" in f]
        if frames and _label(inside) == OUTSIDE:
            counts[frames[-1].split(" (")[0]] += n
    return {k: round(v / total, 3) for k, v in counts.most_common(top)} if total else {}


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
    from bench.launched import code_version  # dagster with it: only here, not for the tests

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -e '.[profile]'")
    with scratch_database(pg_url, "breakdown") as url, tempfile.TemporaryDirectory() as tmp:
        catalog = generate(url, resources)
        _migrate(url)
        raw = Path(tmp) / "samples.txt"
        child = [sys.executable, "-m", "bench.time_breakdown", "--worker", url]
        child += ["--per-run", str(per_run), "--repeats", str(repeats)]
        record = [py_spy, "record", "--idle", "-r", str(rate), "-f", "raw", "-o", str(raw), "--"]
        plain = _child_runs(child)  # first, so the sampled runs do not meet a fresher catalog
        sampled = _child_runs([*record, *child])
        samples = read_raw(raw)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": code_version(),
        "catalog": catalog,
        "run": f"{plain['partitions']} track id ranges in one run, assets and checks",
        "seconds_per_run": [round(s, 2) for s in plain["seconds"]],
        "seconds_per_run_sampled": [round(s, 2) for s in sampled["seconds"]],
        "sample_rate_hz": rate,
        "shares": categorize(samples),
        "dagster_top_functions": top_outside(samples),
    }


def _child_runs(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        command, cwd=ROOT, check=True, capture_output=True, text=True, timeout=3600
    )
    # the child's one JSON line; py-spy writes its own lines to the same stdout
    return json.loads(next(x for x in reversed(done.stdout.splitlines()) if x[:1] == "{"))


def table(result: dict[str, Any]) -> str:
    lines = ["| where the run's wall time goes | share |", "| --- | ---: |"]
    lines += [f"| {name} | {share:.1%} |" for name, share in result["shares"].items()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=40_000)
    parser.add_argument("--per-run", type=int, default=4, help="id ranges packed into the run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
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
    print(
        f"{result['run']}: {result['seconds_per_run']} s; under the sampler "
        f"{result['seconds_per_run_sampled']} s (commit {result['commit']})"
    )
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
