"""Memory and disk: the peak RSS of a fresh process that runs one partition (with and without
the checks) or only loads what a run loads, and the index table's size on disk.

The fresh processes import the worker functions from bench.run_benchmarks, as they always did,
so each loads what a benchmark worker loads and the figures stay comparable with earlier ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from bench.databases import dsn


def peak_rss_of_one_partition(url: str, checks: bool = True) -> float:
    """MiB of max RSS of a fresh process materializing the first track partition."""
    code = (
        "import resource, sys; sys.path.insert(0, '.');"
        "from bench.run_benchmarks import _worker_init, _materialize;"
        f"_worker_init({url!r}, ['000000000-000009999'], checks={checks!r});"
        "_materialize(('track', '000000000-000009999'));"
    )
    with psycopg.connect(dsn(url)) as conn:  # make it do the full work again
        conn.execute(
            "DELETE FROM raw_descriptors WHERE resource_type = 'track' AND resource_id < 10000"
        )
        conn.execute(
            "DELETE FROM normalized_descriptors WHERE resource_type = 'track' AND "
            "resource_id < 10000"
        )
        conn.execute(
            "UPDATE descriptor_index SET input_hash = NULL WHERE resource_type = "
            "'track' AND resource_id < 10000"
        )
        conn.execute("DELETE FROM descriptor_range_fingerprint")
        conn.execute("DELETE FROM descriptor_stage_token")
    return _peak_rss_mib(code)


def _peak_rss_mib(code: str) -> float:
    """Run `code` in a fresh interpreter from the repo root; its own peak RSS, in MiB."""
    # VmHWM is this process's own peak; ru_maxrss would carry the parent's across execve
    code += (
        "\nprint([int(line.split()[1]) for line in open('/proc/self/status')"
        " if line.startswith('VmHWM')][0] / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    return float(out.stdout.strip().splitlines()[-1])


def peak_rss_of_loaded_code(url: str, checks: bool) -> float:
    """MiB of max RSS of a fresh process that loads what a benchmark worker loads and runs
    nothing: the assets (`_ready`) and, with checks, Great Expectations with its context and
    suites. The part of a partition's peak (same worker setup) that no chunk size changes."""
    code = (
        "import sys; sys.path.insert(0, '.');"
        "from bench.run_benchmarks import _worker_init, _ready;"
        f"_worker_init({url!r}, ['000000000-000009999'], checks={checks!r});"
        "_ready(0);"
        "from descriptor_pipeline.quality.suites import suite_for;"
        + ("[suite_for(layer, 'track') for layer in ('raw', 'normalized', 'values', 'index')]"
           if checks else "")
    )  # fmt: skip
    return _peak_rss_mib(code)


def sizes_on_disk(url: str) -> dict[str, float]:
    with psycopg.connect(dsn(url)) as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size('descriptor_index'), "
            "pg_relation_size('descriptor_index'), pg_indexes_size('descriptor_index')"
        ).fetchone()
    return {
        "index_table_total_mib": round(row[0] / 2**20, 1),
        "heap_mib": round(row[1] / 2**20, 1),
        "indexes_mib": round(row[2] / 2**20, 1),
    }
