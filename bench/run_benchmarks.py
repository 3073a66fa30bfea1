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
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

from bench.generate_catalog import generate
from bench.naive import run_naive
from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.id_ranges import RESOURCE_TYPES, ranges_covering

RESULTS = Path(__file__).parent / "results"
STAGE_TABLES = (
    "raw_descriptors",
    "normalized_descriptors",
    "descriptor_index",
    "descriptor_quarantine",
    "descriptor_refresh_queue",
    "descriptor_range_fingerprint",
    "descriptor_stage_token",
    "descriptor_quality_profile",
)
RANGE_SIZE = 10_000
CHUNK_SIZE = 5_000


# ---------------------------------------------------------------- worker processes

_instance = None
_CHECKS = True


def real_instance_home(keys: list[str]) -> str:
    """A DAGSTER_HOME with the repo's dagster.yaml (SQLite storage: run and event-log writes
    included, as a run launched from the UI records them) and the id ranges registered."""
    import shutil

    import dagster as dg

    home = tempfile.mkdtemp(prefix="bench_home_")
    shutil.copy(Path(__file__).parents[1] / "dagster.yaml", home)
    with dg.DagsterInstance.from_config(home) as instance:
        instance.add_dynamic_partitions("id_range", keys)
    return home


def _worker_init(url: str, keys: list[str], home: str | None = None, checks: bool = True) -> None:
    import dagster as dg

    global _instance, _CHECKS
    home = home or real_instance_home(keys)
    os.environ["DAGSTER_HOME"] = home
    _instance = dg.DagsterInstance.from_config(home)
    os.environ["BENCH_URL"] = url
    _CHECKS = checks


def _ready(_: int) -> bool:
    import descriptor_pipeline.defs.assets  # noqa: F401 - imported before the clock starts
    from descriptor_pipeline.quality.suites import _gx

    if _CHECKS:
        _gx()  # GX imported and its context built once per process, before the clock starts
    time.sleep(0.2)  # hold the worker so every worker gets one warm-up task
    return True


def _materialize(partitions: tuple[str, str] | list[tuple[str, str]]) -> dict[str, Any]:
    """One run through the real assets and, unless deselected, their checks (evaluated in
    the asset steps): what a Dagster run does, minus process start. A list of consecutive id
    ranges of one type is one run over that key range, as a UI backfill packs them
    (`BackfillPolicy.multi_run`)."""
    import dagster as dg

    from descriptor_pipeline.defs.assets import descriptor_assets
    from descriptor_pipeline.defs.resources import (
        CatalogResource,
        IndexStoreResource,
        PipelineSettings,
        QualitySettings,
    )

    url = os.environ["BENCH_URL"]
    group = partitions if isinstance(partitions, list) else [partitions]
    keys = [dg.MultiPartitionKey({"resource_type": t, "id_range": r}) for t, r in group]
    resources = {
        "catalog": CatalogResource(url=url),
        "index_store": IndexStoreResource(url=url),
        "settings": PipelineSettings(chunk_size=CHUNK_SIZE),
        "quality": QualitySettings(),
    }
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    selection = dg.AssetSelection.all() if _CHECKS else dg.AssetSelection.all().without_checks()
    if len(keys) == 1:
        result = dg.materialize(
            descriptor_assets, selection=selection, partition_key=keys[0], instance=_instance,
            resources=resources, run_config=quiet, raise_on_error=False,
        )  # fmt: skip
    else:
        job = dg.define_asset_job(
            "packed", selection=selection, partitions_def=descriptor_assets[0].partitions_def
        )
        defs = dg.Definitions(assets=descriptor_assets, jobs=[job], resources=resources)
        result = defs.resolve_job_def("packed").execute_in_process(
            instance=_instance,
            run_config=quiet,
            raise_on_error=False,
            tags={
                "dagster/asset_partition_range_start": str(keys[0]),
                "dagster/asset_partition_range_end": str(keys[-1]),
            },
        )
    out: dict[str, Any] = {"success": result.success, "partitions": len(group)}
    for asset in ("raw_descriptors", "normalized_descriptors", "descriptor_index"):
        # a packed run records the run's totals on every partition's materialization
        mats = result.asset_materializations_for_node(asset)
        out[asset] = {k: v.value for k, v in mats[0].metadata.items()} if mats else {}
    return out


def packed(partitions: list[tuple[str, str]], per_run: int) -> list[list[tuple[str, str]]]:
    """Consecutive id ranges of one type, `per_run` at most per run, as a UI backfill packs."""
    groups: list[list[tuple[str, str]]] = []
    for resource_type in RESOURCE_TYPES:
        ranges = sorted(r for t, r in partitions if t == resource_type)
        groups += [
            [(resource_type, r) for r in ranges[i : i + per_run]]
            for i in range(0, len(ranges), per_run)
        ]
    return groups


def run_partitions(
    url: str,
    partitions: list[tuple[str, str]],
    workers: int,
    checks: bool = True,
    per_run: int = 1,
) -> tuple[float, list[dict[str, Any]]]:
    keys = sorted({k for _, k in partitions})
    home = real_instance_home(keys)  # one real instance shared by the workers
    # biggest first so the pool does not end on one long run
    work: list[Any] = (
        sorted(partitions, key=lambda p: (p[0] != "track", p[0] != "album", p[1]))
        if per_run == 1
        else sorted(packed(partitions, per_run), key=len, reverse=True)
    )
    # spawn, not fork: a forked worker can inherit a lock held by one of the parent's threads
    # and hang the pool (seen in the scaling phase)
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(url, keys, home, checks),
    ) as pool:
        list(pool.map(_ready, range(workers)))  # process start and imports are not timed
        started = time.perf_counter()
        results = list(pool.map(_materialize, work))
        seconds = time.perf_counter() - started
    return seconds, results


def written(results: list[dict[str, Any]], asset: str = "descriptor_index") -> int:
    return sum(int(r[asset]["rows_written"]) for r in results)


# ---------------------------------------------------------------- helpers


def fresh_database(admin_url: str, name: str) -> str:
    admin = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def reset_pipeline_tables(url: str) -> None:
    with psycopg.connect(dsn(url)) as conn:
        conn.execute(f"TRUNCATE {', '.join(STAGE_TABLES)}")


def partitions_for(url: str) -> tuple[list[tuple[str, str]], int]:
    """The partitions a full refresh runs (those with rows), and how many are registered."""
    from descriptor_pipeline.catalog import CatalogSource
    from descriptor_pipeline.freshness import partitions_with_rows
    from descriptor_pipeline.id_ranges import DescriptorPartition
    from descriptor_pipeline.index_store import IndexStore
    from descriptor_pipeline.store_engine import create_engine

    with psycopg.connect(dsn(url)) as conn:
        max_id = max(
            conn.execute(f"SELECT coalesce(max(id), 0) FROM music_{t}").fetchone()[0]
            for t in RESOURCE_TYPES
        )
    registered = [
        DescriptorPartition(t, r)
        for t in RESOURCE_TYPES
        for r in ranges_covering(max_id, RANGE_SIZE)
    ]
    engine = create_engine(url)
    occupied = partitions_with_rows(CatalogSource(engine), IndexStore(engine), registered)
    engine.dispose()
    return [(p.resource_type, p.id_range.key) for p in occupied], len(registered)


def freshness_gate(
    url: str, partitions: list[tuple[str, str]]
) -> tuple[float, list[tuple[str, str]]]:
    """What `full_refresh_schedule` evaluates before it requests runs, timed: the partitions
    that are not current (`descriptor_pipeline.freshness`)."""
    from descriptor_pipeline.catalog import CatalogSource
    from descriptor_pipeline.defs.resources import FreshnessSettings
    from descriptor_pipeline.freshness import stale_partitions
    from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
    from descriptor_pipeline.index_store import IndexStore
    from descriptor_pipeline.stages import normalization_context
    from descriptor_pipeline.store_engine import create_engine
    from descriptor_pipeline.tables import PUBLISHED_TABLE

    engine = create_engine(url)
    started = time.perf_counter()
    source, store = CatalogSource(engine), IndexStore(engine)
    wanted = [DescriptorPartition(t, IdRange.parse(r)) for t, r in partitions]
    settings = FreshnessSettings()
    ctx, budget = normalization_context(source), settings.gate_budget_seconds
    stale = stale_partitions(
        source, store, wanted, ctx, PUBLISHED_TABLE, budget, settings.gate_connections
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, [(p.resource_type, p.id_range.key) for p in stale]


def count_index(url: str) -> int:
    with psycopg.connect(dsn(url)) as conn:
        return conn.execute("SELECT count(*) FROM descriptor_index").fetchone()[0]


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


def incremental(url: str, seed: int) -> dict[str, Any]:
    """1,000 changed resources incl. one genre rename; sensors find them, runs apply them."""
    import dagster as dg

    from descriptor_pipeline.defs import sensors
    from descriptor_pipeline.defs.assets import descriptor_assets
    from descriptor_pipeline.defs.partitions import register_id_ranges
    from descriptor_pipeline.defs.resources import (
        CatalogResource,
        FreshnessSettings,
        IndexStoreResource,
        PipelineSettings,
        QualitySettings,
    )

    resources = {
        "catalog": CatalogResource(url=url),
        "index_store": IndexStoreResource(url=url),
        "settings": PipelineSettings(chunk_size=CHUNK_SIZE),
        "quality": QualitySettings(),
        "freshness": FreshnessSettings(),
    }
    instance = dg.DagsterInstance.ephemeral()
    register_id_ranges(instance, open_catalog(url, None), RANGE_SIZE)

    def tick(sensor: Any, cursor: str | None) -> dg.SensorResult:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        return sensor(context)

    first = tick(sensors.incremental_refresh_sensor, None)  # takes the position
    rng = random.Random(seed)
    with psycopg.connect(dsn(url)) as conn:
        genre = conn.execute(
            "SELECT genre_id FROM music_artist_genres GROUP BY genre_id "
            "ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()[0]
        fan = conn.execute(
            "SELECT count(*) FROM music_artist_genres WHERE genre_id = %s", (genre,)
        ).fetchone()[0]
        tracks = conn.execute("SELECT count(*) FROM music_track").fetchone()[0]
        ids = rng.sample(range(1, tracks + 1), 999)
        started = time.perf_counter()
        conn.execute(
            "UPDATE music_genre SET name = name || ' (renamed)', updated_at = now() WHERE id = %s",
            (genre,),
        )
        conn.execute(
            "UPDATE music_track SET name = name || ' (remaster)', updated_at = now() "
            "WHERE id = ANY(%s)",
            (ids,),
        )
        conn.commit()
    runs = 0
    cursor = first.cursor
    result = tick(sensors.incremental_refresh_sensor, cursor)
    partitions = {str(r.partition_key) for r in result.run_requests}

    def run(request: dg.RunRequest) -> None:
        """What the daemon does with a request (here one after another, in this process)."""
        dg.materialize(
            descriptor_assets,
            partition_key=request.partition_key,
            instance=instance,
            resources=resources,
            tags=request.tags,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )

    for request in result.run_requests:
        run(request)
        runs += 1
    changed_done = time.perf_counter() - started
    queue_cursor = None
    for _ in range(50):  # fan-out drains in bounded batches
        queued = tick(sensors.refresh_queue_sensor, queue_cursor)
        queue_cursor = queued.cursor
        if not queued.run_requests:
            break
        for request in queued.run_requests:
            partitions.add(str(request.partition_key))
            run(request)
            runs += 1
    total = time.perf_counter() - started
    with psycopg.connect(dsn(url)) as conn:
        reflected = conn.execute(
            "SELECT count(*) FROM descriptor_index WHERE resource_type = 'track' AND "
            "resource_id = ANY(%s) AND name LIKE '%%(remaster)'",
            (ids,),
        ).fetchone()[0]
    return {
        "changed": 1000,
        "genre_fanout_artists": fan,
        "runs": runs,
        "partitions": len(partitions),
        "seconds_direct_changes": round(changed_done, 2),
        "seconds_incl_fanout": round(total, 2),
        "tracks_reflected": reflected,
    }


def lookups(url: str, seed: int, n: int = 1000, clients: int = 8) -> dict[str, float]:
    from descriptor_pipeline.index_store import IndexStore
    from descriptor_pipeline.store_engine import create_engine

    store = IndexStore(create_engine(url, pool_size=clients, max_overflow=0))
    rng = random.Random(seed)
    with psycopg.connect(dsn(url)) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM descriptor_index TABLESAMPLE SYSTEM (5) LIMIT 20000"
            )
        ]
    queries = []
    for _ in range(n):
        words = rng.choice(names).split()
        k = min(len(words), rng.choice((1, 1, 2, 2, 3)))
        queries.append(" ".join(words[:k]) if words else "rock")
    for q in queries[:50]:
        store.search(q)  # warm the cache as a running service would be
    latencies = []
    for q in queries:
        t = time.perf_counter()
        store.search(q, limit=10)
        latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda q: store.search(q, limit=10), queries * 2))
    qps = 2 * n / (time.perf_counter() - started)
    store.engine.dispose()
    return {
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(0.95 * n) - 1], 2),
        "p99_ms": round(latencies[int(0.99 * n) - 1], 2),
        "qps_8_clients": round(qps, 1),
    }


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

    # the same backfill three times: assets only (checks deselected) and the production shape,
    # both packed as a UI backfill packs id ranges into runs; then one run per partition (what
    # the CLI's backfill and the sensors launch)
    seconds_assets, _ = run_partitions(url, partitions, workers, checks=False, per_run=per_run)
    reset_pipeline_tables(url)
    seconds_single, _ = run_partitions(url, partitions, workers)
    reset_pipeline_tables(url)
    seconds, results = run_partitions(url, partitions, workers, per_run=per_run)
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
        "failed_runs": sum(not r["success"] for r in results),
        "partitions_per_run": per_run,
        "runs": len(results),
        "seconds_one_run_per_partition": round(seconds_single, 1),
        "seconds_assets_only": round(seconds_assets, 1),
        "checks_share_of_wall": round(1 - seconds_assets / seconds, 3),
        # the same share from inside the runs: building facts + validating, over run time
        "checks_share_in_steps": round(checks_seconds / (seconds * workers), 3),
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
        results[f"{size:,}"] = bench_size(
            args.pg_url,
            size,
            args.seed,
            args.workers,
            args.naive_sample,
            not args.no_scaling,
            args.per_run,
        )
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"bench_{size}.json").write_text(
            json.dumps({"machine": machine, **results[f"{size:,}"]}, indent=2)
        )
    print(f"machine: {machine}")
    from bench.report import load, table

    print(table(load()))


if __name__ == "__main__":
    main()
