"""The Celery deployment mode with real workers: RabbitMQ, dagster-postgres, PostgreSQL data.

Run alone with `pytest -m celery`. Each test gets its own vhost and databases (dropped after).
"""

from __future__ import annotations

import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.defs.assets import CATALOG_POOL, WRITER_POOL
from descriptor_pipeline.defs.partitions import register_id_ranges
from descriptor_pipeline.demo.seed import seed_catalog
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.index_store import open_store
from descriptor_pipeline.refresh.tags import TAG_MODE, run_tags, scope_tags
from descriptor_pipeline_tests.celery_cluster import (
    Cluster,
    cluster_env,
    rabbit_or_skip,
    rabbitmqctl,
    stop,
    wait_for,
)
from descriptor_pipeline_tests.conftest import Deployment, write_instance_file

pytestmark = pytest.mark.celery
RANGE = IdRange.parse("000000000-000000999")
INDEX_COLUMNS = (
    "resource_type, resource_id, document_key, name, display_text, search_name, "
    "search_aliases, search_facets, search_description, document, hidden, content_hash"
)


def _database(admin_url: str) -> tuple[str, str]:
    name = f"dp_celery_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def cluster(
    pg_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Cluster, dg.DagsterInstance]]:
    """Vhost, instance database and data database of one test; workers stopped at teardown."""
    rabbit_or_skip()
    vhost = f"dp-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    databases = [_database(pg_admin_url), _database(pg_admin_url)]
    (_, instance_url), (_, data_url) = databases
    env = cluster_env(tmp_path, vhost, instance_url, data_url)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir()
    write_instance_file(home, postgres=True)
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", env["DAGSTER_POSTGRES_URL"])
    cluster = Cluster(tmp_path, env)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:  # creates the schema
            store = open_store(data_url)  # migrate first: it creates the roles the seed grants
            source = open_catalog(data_url, None)
            seed_catalog(source.engine, source.config)
            register_id_ranges(instance, source, 1000)
            # first use of a pool inserts its row: run processes starting together on a fresh
            # instance database race on that insert (UniqueViolation), so create them here
            for pool in (CATALOG_POOL, WRITER_POOL):
                instance.event_log_storage.initialize_concurrency_limit_to_default(pool)
            store.engine.dispose()
            yield cluster, instance
    finally:
        cluster.close()
        for cached in (open_catalog, open_store):
            cached.cache_clear()
        admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name, _ in databases:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        rabbitmqctl("delete_vhost", vhost)


def partition_tags(resource_type: str, mode: str, **extra: str) -> dict[str, str]:
    return {
        "dagster/partition": f"{RANGE.key}|{resource_type}",
        **run_tags(mode, **extra),
    }


def finish(cluster: Cluster, name: str, proc: object, timeout: float = 150) -> None:
    wait_for(
        f"run {name}",
        lambda: proc.poll() is not None,
        timeout,  # type: ignore[attr-defined]
        [cluster.log(name), *(cluster.log(w) for w in cluster.workers)],
    )


def index_rows(url: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT {INDEX_COLUMNS} FROM descriptor_index ORDER BY resource_type, resource_id"
            )
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def runs_by_mode(instance: dg.DagsterInstance, mode: str) -> list[dg.RunRecord]:
    return list(instance.get_run_records(filters=dg.RunsFilter(tags={TAG_MODE: mode})))


def executed_tasks(cluster: Cluster, worker: str) -> int:
    text = cluster.log(worker).read_text(errors="replace")
    return len(re.findall(r"Task execute_plan\[[^\]]+\] succeeded", text))


def test_two_workers_build_the_same_index_as_in_process(
    cluster: tuple[Cluster, dg.DagsterInstance], pg_url: str
) -> None:
    c, instance = cluster
    workers = [c.start_worker("bulk"), c.start_worker("bulk")]
    types = ["genre", "artist", "album", "track"]
    started = time.monotonic()
    procs = {t: c.launch(f"run-{t}", partition_tags(t, "full")) for t in types}
    for t, proc in procs.items():
        finish(c, f"run-{t}", proc)
    elapsed = time.monotonic() - started
    records = runs_by_mode(instance, "full")
    assert sorted(r.dagster_run.status.value for r in records) == ["SUCCESS"] * 4
    assert {r.dagster_run.tags["dagster-celery/queue"] for r in records} == {"bulk"}
    assert all(executed_tasks(c, w) > 0 for w in workers), "both workers ran steps"
    assert sum(executed_tasks(c, w) for w in workers) == 12  # 4 runs x 3 asset steps
    # the same partitions in process, into an index of its own, from the same catalog
    data_url = c.env["DESCRIPTOR_CATALOG_URL"]
    with dg.instance_for_test() as local:
        dep = Deployment(data_url, pg_url, local)
        dep.store  # noqa: B018
        register_id_ranges(local, dep.catalog, 1000)
        for t in types:
            assert dep.materialize(DescriptorPartition(t, RANGE)).success
    celery_rows, local_rows = index_rows(data_url), index_rows(pg_url)
    assert len(celery_rows) > 50
    assert celery_rows == local_rows
    print(f"\n4 partitions through 2 workers: {elapsed:.1f}s, {len(celery_rows)} documents")


def test_a_killed_worker_hands_its_step_to_the_other(
    cluster: tuple[Cluster, dg.DagsterInstance],
) -> None:
    c, instance = cluster
    workers = [c.start_worker("bulk"), c.start_worker("bulk")]
    data_url = c.env["DESCRIPTOR_CATALOG_URL"]
    table = open_catalog(data_url, None).resource_table("artist").name
    # hold the artist table: the raw step blocks inside its catalog read, mid-step
    locker = sa.create_engine(data_url)
    conn = locker.connect()
    tx = conn.begin()
    conn.execute(sa.text(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE'))
    try:
        proc = c.launch("run-artist", partition_tags("artist", "full"))

        def holder() -> str | None:
            got = [
                w
                for w in workers
                if re.search(
                    r"Task execute_plan\[\S+\] received", c.log(w).read_text(errors="replace")
                )
            ]
            return got[0] if got else None

        victim = wait_for(
            "a worker to take the raw step",
            holder,
            120,
            [c.log("run-artist"), *(c.log(w) for w in workers)],
        )
        time.sleep(2)  # inside the step: the worker has loaded the job and is reading
        stop(c.workers[victim], signal.SIGKILL)
    finally:
        tx.rollback()
        conn.close()
        locker.dispose()
    finish(c, "run-artist", proc)
    (record,) = runs_by_mode(instance, "full")
    assert record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    (survivor,) = [w for w in workers if w != victim]
    assert executed_tasks(c, survivor) == 3, "the survivor ran all three steps"
    assert executed_tasks(c, victim) == 0
    store = open_store(data_url)
    artists = open_catalog(data_url, None).max_ids()["artist"]
    assert store.document("artist", 1) is not None and artists > 0
    published = instance.fetch_materializations(dg.AssetKey("descriptor_index"), limit=50)
    assert len(published.records) == 1, "the index was published once"


def bulk_waiting(c: Cluster, worker: str, runs: list[str]) -> int:
    """Bulk steps submitted and not done, beyond the one the worker is running."""
    submitted = sum(
        c.log(r).read_text(errors="replace").count("Submitting celery task") for r in runs
    )
    return submitted - executed_tasks(c, worker) - 1


def test_a_targeted_reindex_overtakes_a_backfill_on_the_bulk_queue(
    cluster: tuple[Cluster, dg.DagsterInstance],
) -> None:
    c, instance = cluster
    bulk, interactive = c.start_worker("bulk"), c.start_worker("interactive")
    # Pool slots are claimed by the run process when it submits a step, so bulk steps waiting
    # in the Celery queue hold them: with the default 2 slots the targeted run's writer step
    # waited for the blocked backfill (observed). The Celery mode sizes the pools above the
    # bulk lane's runs (docs/rollout.md), as an operator does here.
    for pool in (CATALOG_POOL, WRITER_POOL):
        instance.event_log_storage.set_concurrency_slots(pool, 8)
    data_url = c.env["DESCRIPTOR_CATALOG_URL"]
    table = open_catalog(data_url, None).resource_table("track").name
    # a long backfill: the track partition's raw step holds the one bulk worker until released
    locker = sa.create_engine(data_url)
    conn = locker.connect()
    tx = conn.begin()
    conn.execute(sa.text(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE'))
    try:
        backfill = {
            t: c.launch(f"bulk-{t}", partition_tags(t, "full")) for t in ("genre", "album", "track")
        }
        names = [f"bulk-{t}" for t in backfill]
        wait_for(
            "the backfill to fill the bulk queue",
            lambda: bulk_waiting(c, bulk, names) >= 1,
            120,
            [c.log(bulk), *(c.log(f"bulk-{t}") for t in backfill)],
        )
        submitted = time.monotonic()
        targeted = c.launch(
            "targeted", partition_tags("artist", "targeted", **scope_tags([1, 2, 3]))
        )
        finish(c, "targeted", targeted)
        latency = time.monotonic() - submitted
        waiting = bulk_waiting(c, bulk, names)
        assert backfill["track"].poll() is None, "the backfill is still running"
    finally:
        tx.rollback()
        conn.close()
        locker.dispose()
    for t, proc in backfill.items():
        finish(c, f"bulk-{t}", proc)
    (fast,) = runs_by_mode(instance, "targeted")
    slow = runs_by_mode(instance, "full")
    assert fast.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert fast.dagster_run.tags["dagster-celery/queue"] == "interactive"
    assert [r.dagster_run.status for r in slow] == [dg.DagsterRunStatus.SUCCESS] * 3
    assert fast.end_time is not None and fast.end_time < min(
        r.end_time or 0 for r in slow if "track" in r.dagster_run.tags["dagster/partition"]
    )
    assert executed_tasks(c, interactive) == 3 and executed_tasks(c, bulk) == 9
    run_time = (fast.end_time or 0) - (fast.start_time or 0)
    print(
        f"\ntargeted reindex: {latency:.1f}s from submission (run process start included), "
        f"{run_time:.1f}s of run; {waiting} bulk step(s) still queued when it finished"
    )


def test_a_worker_with_other_code_is_refused(cluster: tuple[Cluster, dg.DagsterInstance]) -> None:
    c, instance = cluster
    c.start_worker("interactive", extra_env={"DESCRIPTOR_CODE_VERSION": "older-release"})
    proc = c.launch("stale", partition_tags("artist", "targeted"))
    finish(c, "stale", proc)
    (record,) = runs_by_mode(instance, "targeted")
    assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert "runs descriptor_pipeline code version older-release" in c.log("stale").read_text()
    assert open_store(c.env["DESCRIPTOR_INDEX_URL"]).document("artist", 1) is None
