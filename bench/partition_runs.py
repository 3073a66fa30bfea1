"""The timed backfill's runs: worker processes that materialize the real assets in process (one
run per partition, or consecutive id ranges packed into one run as a UI backfill packs them), the
partitions a full refresh runs, and the freshness gate the weekly schedule evaluates before it.

`_worker_init` sets this module's state (`_instance`, `_CHECKS`) in each worker; the peak-RSS
processes of bench/footprint.py call the worker functions through bench.run_benchmarks.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from bench.databases import dsn, reset_pipeline_tables
from descriptor_pipeline.id_ranges import RESOURCE_TYPES, ranges_covering

RANGE_SIZE = 10_000
CHUNK_SIZE = 5_000


# ---------------------------------------------------------------- worker processes

_instance = None
_CHECKS = True
_PUBLISH_TABLE = "descriptor_index"


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


def _worker_init(
    url: str,
    keys: list[str],
    home: str | None = None,
    checks: bool = True,
    publish_table: str = "descriptor_index",
) -> None:
    import dagster as dg

    global _instance, _CHECKS, _PUBLISH_TABLE
    home = home or real_instance_home(keys)
    os.environ["DAGSTER_HOME"] = home
    _instance = dg.DagsterInstance.from_config(home)
    os.environ["BENCH_URL"] = url
    _CHECKS = checks
    _PUBLISH_TABLE = publish_table


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
        "settings": PipelineSettings(chunk_size=CHUNK_SIZE, publish_table=_PUBLISH_TABLE),
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
    publish_table: str = "descriptor_index",
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
        initargs=(url, keys, home, checks, publish_table),
    ) as pool:
        list(pool.map(_ready, range(workers)))  # process start and imports are not timed
        started = time.perf_counter()
        results = list(pool.map(_materialize, work))
        seconds = time.perf_counter() - started
    return seconds, results


def paired_backfills(
    url: str, partitions: list[tuple[str, str]], workers: int, per_run: int, repeats: int
) -> tuple[list[float], list[float], list[dict[str, Any]], int]:
    """The packed backfill with the checks deselected and with them, each on empty tables,
    `repeats` pairs: the checks' share of the wall time is the difference of two timings,
    which one pair cannot tell from the machine's noise (the same assets-only backfill took
    17.0-19.7 s at 100k). The order alternates, so neither always follows the other's
    checkpoints and autovacuum; the last pair runs with the checks last, so the tables end as a
    production-shape run wrote them. Seconds of each, that last run's results, and the failed
    runs of every backfill."""
    assets: list[float] = []
    full: list[float] = []
    results: list[dict[str, Any]] = []
    failed = 0
    for pair in range(repeats):
        checks_first = (repeats - 1 - pair) % 2 == 1
        for checks in (True, False) if checks_first else (False, True):
            reset_pipeline_tables(url)
            seconds, done = run_partitions(url, partitions, workers, checks, per_run)
            failed += sum(not r["success"] for r in done)
            (full if checks else assets).append(seconds)
            if checks:
                results = done
    return assets, full, results, failed


def shadow_rebuild(
    url: str, partitions: list[tuple[str, str]], workers: int, per_run: int
) -> dict[str, Any]:
    """A full rebuild the way docs/operations.md runs one: an empty shadow with its keys'
    indexes only, the packed backfill (assets and checks) publishing into it, then the swap,
    which builds the GIN, trigram and name indexes whole first. From empty stage tables, as
    the full backfill it is set against."""
    from descriptor_pipeline import index_store_postgres as pg
    from descriptor_pipeline.store_engine import create_engine

    reset_pipeline_tables(url)
    engine = create_engine(url)
    try:
        pg.create_shadow(engine)
        seconds, results = run_partitions(
            url, partitions, workers, per_run=per_run, publish_table=pg.SHADOW_TABLE
        )
        started = time.perf_counter()
        built = pg.build_shadow_indexes(engine)
        index_seconds = time.perf_counter() - started
        pg.swap_in_shadow(engine)
        swap_seconds = time.perf_counter() - started - index_seconds
    finally:
        engine.dispose()
    total = seconds + index_seconds + swap_seconds
    return {
        "seconds": round(total, 1),
        "backfill_seconds": round(seconds, 1),
        "index_build_seconds": round(index_seconds, 2),
        "indexes_built": built,
        "swap_seconds": round(swap_seconds, 2),
        "failed_runs": sum(not r["success"] for r in results),
        "rows_written_index": written(results),
    }


def written(results: list[dict[str, Any]], asset: str = "descriptor_index") -> int:
    return sum(int(r[asset]["rows_written"]) for r in results)


# ---------------------------------------------------------------- the partitions to run


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
