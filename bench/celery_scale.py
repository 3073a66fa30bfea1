"""Throughput of the Celery deployment with 1, 2 and 4 workers, beside the in-process path.

Each size gets its own RabbitMQ vhost, Dagster instance database and fresh pipeline tables on one
generated catalog in PostgreSQL; the same partitions are launched as runs (`dagster job execute`,
as the daemon launches them) whose steps go to the workers on the `bulk` queue. The in-process
figure runs the same partitions with `materialize` in this process. Ratios come from one run.

    .venv/bin/python -m bench.celery_scale --resources 20000 --workers 1 2 4
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import dagster as dg
import sqlalchemy as sa

from bench.databases import fresh_database, reset_pipeline_tables
from bench.generate_catalog import generate
from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.defs.assets import CATALOG_POOL, WRITER_POOL, descriptor_assets
from descriptor_pipeline.defs.partitions import multi_partition_key, register_id_ranges
from descriptor_pipeline.defs.resources import (
    CatalogResource,
    FreshnessSettings,
    IndexStoreResource,
    PipelineSettings,
    QualitySettings,
)
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.index_store import open_store
from descriptor_pipeline.refresh.tags import run_tags
from descriptor_pipeline_tests.celery_cluster import Cluster, cluster_env, rabbitmqctl, wait_for
from descriptor_pipeline_tests.conftest import write_instance_file

RESULTS = Path(__file__).parent / "results" / "celery_scale.json"
RANGE_SIZE = 2000


def _partitions(url: str, count: int) -> list[DescriptorPartition]:
    with dg.DagsterInstance.ephemeral() as instance:
        register_id_ranges(instance, open_catalog(url, None), RANGE_SIZE)
        keys = instance.get_dynamic_partitions("id_range")
    candidates = [DescriptorPartition("track", IdRange.parse(k)) for k in sorted(keys)]
    occupied = open_catalog(url, None).occupied(candidates)  # one probe per range, once
    return [p for p in candidates if p in occupied][:count]


def _rows(url: str, partitions: list[DescriptorPartition]) -> int:
    return sum(open_catalog(url, None).count(p.resource_type, p.id_range) for p in partitions)


def in_process(url: str, partitions: list[DescriptorPartition]) -> float:
    reset_pipeline_tables(url)
    resources = {
        "catalog": CatalogResource(url=url),
        "index_store": IndexStoreResource(url=url),
        "settings": PipelineSettings(chunk_size=2000),
        "quality": QualitySettings(),
        "freshness": FreshnessSettings(),
    }
    from descriptor_pipeline.quality.gx_import import import_great_expectations

    import_great_expectations()  # a worker imports it once, then stays warm

    started = time.perf_counter()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("id_range", [p.id_range.key for p in partitions])
        for p in partitions:
            result = dg.materialize(
                descriptor_assets,
                partition_key=multi_partition_key(p),
                instance=instance,
                resources=resources,
                raise_on_error=False,
            )
            assert result.success, p.key
    return time.perf_counter() - started


def on_workers(
    admin: str, url: str, partitions: list[DescriptorPartition], workers: int, tmp: Path
) -> dict[str, float]:
    reset_pipeline_tables(url)
    vhost = f"dp-bench-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    instance_url = fresh_database(admin, f"bench_celery_instance_{workers}")
    home = tmp / f"w{workers}"
    home.mkdir()
    env = cluster_env(home, vhost, instance_url, url)
    dagster_home = Path(env["DAGSTER_HOME"])
    dagster_home.mkdir()
    write_instance_file(dagster_home, postgres=True)
    os.environ["DAGSTER_POSTGRES_URL"] = env["DAGSTER_POSTGRES_URL"]
    cluster = Cluster(home, env)
    try:
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            instance.add_dynamic_partitions("id_range", [p.id_range.key for p in partitions])
            for pool in (CATALOG_POOL, WRITER_POOL):  # one slot per worker and pool
                instance.event_log_storage.set_concurrency_slots(pool, max(workers, 2))
        started = time.perf_counter()
        for _ in range(workers):
            cluster.start_worker("bulk")
        ready = time.perf_counter() - started
        started = time.perf_counter()
        procs = [
            cluster.launch(
                f"run-{i}",
                {"dagster/partition": f"{p.id_range.key}|{p.resource_type}", **run_tags("full")},
            )
            for i, p in enumerate(partitions)
        ]
        logs = [cluster.log(f"run-{i}") for i in range(len(procs))]
        wait_for("every run", lambda: all(p.poll() is not None for p in procs), 1800, logs)
        seconds = time.perf_counter() - started
        failed = [i for i, p in enumerate(procs) if p.returncode]
        assert not failed, f"runs {failed} failed: see {logs[failed[0]]}"
        return {"seconds": seconds, "workers_ready_seconds": ready}
    finally:
        cluster.close()
        rabbitmqctl("delete_vhost", vhost)
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(
                sa.text(f'DROP DATABASE IF EXISTS "bench_celery_instance_{workers}" WITH (FORCE)')
            )
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    url = fresh_database(args.pg_url, "bench_celery_catalog")
    generate(url, args.resources)
    open_store(url)  # migrate
    partitions = _partitions(url, args.partitions)
    rows = _rows(url, partitions)
    out: dict[str, Any] = {
        "resources": rows,
        "partitions": [p.key for p in partitions],
        "load_average_at_start": os.getloadavg(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out["in_process"] = {"seconds": round(in_process(url, partitions), 1)}
    with TemporaryDirectory() as tmp:
        for n in args.workers:
            out[f"workers_{n}"] = {
                k: round(v, 1)
                for k, v in on_workers(args.pg_url, url, partitions, n, Path(tmp)).items()
            }
    base = out["in_process"]["seconds"]
    print(f"{rows} track resources in {len(partitions)} partition runs ({RANGE_SIZE} ids each)")
    print(f"{'path':<14}{'seconds':>9}{'resources/s':>13}{'vs in-process':>15}")
    print(f"{'in process':<14}{base:>9.1f}{rows / base:>13.0f}{1.0:>15.2f}")
    for n in args.workers:
        s = out[f"workers_{n}"]["seconds"]
        out[f"workers_{n}"]["resources_per_s"] = round(rows / s)
        print(f"{f'{n} worker(s)':<14}{s:>9.1f}{rows / s:>13.0f}{base / s:>15.2f}")
    out["per_run_overhead_seconds_1_worker"] = (
        round((out["workers_1"]["seconds"] - base) / len(partitions), 2)
        if "workers_1" in out
        else None
    )
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
