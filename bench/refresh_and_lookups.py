"""What the users of a running deployment wait for, measured in process: 1,000 catalog changes
(one of them a genre rename that fans out) found by the real sensors and applied by runs, and
lookup latency and 8-client throughput on the published index."""

from __future__ import annotations

import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from bench.databases import dsn
from bench.partition_runs import CHUNK_SIZE, RANGE_SIZE
from descriptor_pipeline.catalog import open_catalog


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
