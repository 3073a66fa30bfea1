"""The Celery deployment mode with real workers: RabbitMQ, dagster-postgres, PostgreSQL data.

Run alone with `pytest -m celery`. Each test gets its own vhost and databases (dropped after).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
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
from descriptor_pipeline.refresh.tags import run_tags, scope_tags
from descriptor_pipeline_tests.celery_cluster import (
    Cluster,
    cluster_env,
    executed_tasks,
    finish,
    group_alive,
    index_rows,
    materializations,
    rabbit_or_skip,
    rabbitmqctl,
    rows_written,
    runs_by_mode,
    stop,
    wait_for,
)
from descriptor_pipeline_tests.conftest import Deployment, write_instance_file

pytestmark = pytest.mark.celery
RANGE = IdRange.parse("000000000-000000999")


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
    # hold the artist table: the raw step blocks inside its catalog read, mid-step
    data_url = c.env["DESCRIPTOR_CATALOG_URL"]
    with c.catalog_table_locked("artist"):
        proc = c.launch("run-artist", partition_tags("artist", "full"))

        def holder() -> str | None:
            got = [w for w in workers if re.search(r"Task execute_plan\[\S+\] received",
                                                   c.log(w).read_text(errors="replace"))]
            return got[0] if got else None

        victim = wait_for("a worker to take the raw step", holder, 120,
                          [c.log("run-artist"), *(c.log(w) for w in workers)])
        time.sleep(2)  # inside the step: the worker has loaded the job and is reading
        stop(c.workers[victim], signal.SIGKILL)
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
    submitted = sum(c.log(r).read_text(errors="replace").count("Submitting celery task")
                    for r in runs)
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
    # a long backfill: the track partition's raw step holds the one bulk worker until released
    with c.catalog_table_locked("track"):
        backfill = {t: c.launch(f"bulk-{t}", partition_tags(t, "full"))
                    for t in ("genre", "album", "track")}
        names = [f"bulk-{t}" for t in backfill]
        wait_for("the backfill to fill the bulk queue", lambda: bulk_waiting(c, bulk, names) >= 1,
                 120,
                 [c.log(bulk), *(c.log(f"bulk-{t}") for t in backfill)])
        submitted = time.monotonic()
        targeted = c.launch("targeted", partition_tags(
            "artist", "targeted", **scope_tags([1, 2, 3])))
        finish(c, "targeted", targeted)
        latency = time.monotonic() - submitted
        waiting = bulk_waiting(c, bulk, names)
        assert backfill["track"].poll() is None, "the backfill is still running"
    for t, proc in backfill.items():
        finish(c, f"bulk-{t}", proc)
    (fast,) = runs_by_mode(instance, "targeted")
    slow = runs_by_mode(instance, "full")
    assert fast.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    assert fast.dagster_run.tags["dagster-celery/queue"] == "interactive"
    assert [r.dagster_run.status for r in slow] == [dg.DagsterRunStatus.SUCCESS] * 3
    assert fast.end_time is not None and fast.end_time < min(r.end_time or 0 for r in slow
                                                              if "track" in r.dagster_run.tags[
                                                                  "dagster/partition"])
    assert executed_tasks(c, interactive) == 3 and executed_tasks(c, bulk) == 9
    run_time = (fast.end_time or 0) - (fast.start_time or 0)
    print(f"\ntargeted reindex: {latency:.1f}s from submission (run process start included), "
          f"{run_time:.1f}s of run; {waiting} bulk step(s) still queued when it finished")


def test_a_worker_with_other_code_is_refused(cluster: tuple[Cluster, dg.DagsterInstance]) -> None:
    c, instance = cluster
    c.start_worker("interactive", extra_env={"DESCRIPTOR_CODE_VERSION": "older-release"})
    proc = c.launch("stale", partition_tags("artist", "targeted"))
    finish(c, "stale", proc)
    (record,) = runs_by_mode(instance, "targeted")
    assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
    assert "runs descriptor_pipeline code version older-release" in c.log("stale").read_text()
    assert open_store(c.env["DESCRIPTOR_INDEX_URL"]).document("artist", 1) is None


def test_a_broker_lost_mid_backfill_fails_the_runs_and_the_resume_completes_them(
    cluster: tuple[Cluster, dg.DagsterInstance], pg_url: str
) -> None:
    c, instance = cluster
    workers = [c.start_worker("bulk"), c.start_worker("bulk")]
    types = ["genre", "artist", "album", "track"]
    data_url = c.env["DESCRIPTOR_CATALOG_URL"]
    # the track partition's raw step blocks inside its catalog read, so a step is mid-flight on
    # a worker when the broker goes, while the other worker works through the other partitions
    with c.catalog_table_locked("track") as waiting_for_lock:
        procs = {t: c.launch(f"run-{t}", partition_tags(t, "full")) for t in types}
        logs = [*(c.log(f"run-{t}") for t in types), *(c.log(w) for w in workers)]

        def midway() -> bool:
            received = any(re.search(r"Task execute_plan\[\S+\] received",
                                     c.log(w).read_text(errors="replace")) for w in workers)
            return received and sum(executed_tasks(c, w) for w in workers) >= 3

        wait_for("the backfill to be under way", midway, 120, logs)
        done_before = sum(executed_tasks(c, w) for w in workers)
        # the broker goes away: no connection to the vhost is accepted, the open ones are closed
        rabbitmqctl("set_vhost_limits", "-p", c.vhost, '{"max-connections": 0}')
        cut = time.monotonic()
        rabbitmqctl("close_all_connections", "--vhost", c.vhost, "test: broker gone")
        for t, proc in procs.items():  # a clear failure within seconds, not a hang
            wait_for(f"run {t} to end without its broker", lambda p=proc: p.poll() is not None,
                     60, logs)
        ended = time.monotonic() - cut
        # every step still blocked in the catalog read belongs to a run that is over: it is
        # stopped (Celery's cancel, or the run watch for a step received just before the cut)
        # while the table is still locked, so it cannot publish into its failed run
        wait_for("the blocked steps of the failed runs to be stopped",
                 lambda: waiting_for_lock() == 0, 30, logs)
    records = runs_by_mode(instance, "full")
    status = {r.dagster_run.tags["dagster/partition"]: r.dagster_run.status for r in records}
    failed = [r.dagster_run for r in records if r.dagster_run.status == dg.DagsterRunStatus.FAILURE]
    assert set(status.values()) <= {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}
    assert status[f"{RANGE.key}|track"] == dg.DagsterRunStatus.FAILURE
    for run in failed:  # the failure names the broker
        partition = run.tags["dagster/partition"].split("|")[1]
        text = c.log(f"run-{partition}").read_text(errors="replace")
        assert re.search(r"CONNECTION_FORCED|NOT_ALLOWED", text), text[-3000:]
    # the broker comes back; the workers reconnect by themselves
    rabbitmqctl("clear_vhost_limits", "-p", c.vhost)
    back = time.monotonic()
    for w in workers:
        wait_for(f"worker {w} to reconnect", lambda w=w: c.log(w).read_text(
            errors="replace").count("Connected to amqp") >= 2, 60, [c.log(w)])
    reconnected = time.monotonic() - back
    resumes = [c.resume(f"resume-{i}", run.run_id) for i, run in enumerate(failed)]
    for i, proc in enumerate(resumes):
        finish(c, f"resume-{i}", proc)
        assert proc.returncode == 0, c.log(f"resume-{i}").read_text()[-3000:]
    resumed = [r.dagster_run for r in instance.get_run_records()
               if r.dagster_run.parent_run_id in {run.run_id for run in failed}]
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in resumed)
    resumed_ids = {run.run_id for run in resumed}
    dropped = sum(c.log(w).read_text(errors="replace").count("its run is over")
                  for w in workers)
    print(f"\nbroker cut after {done_before} steps: {len(failed)} of 4 runs failed within "
          f"{ended:.1f}s; workers back {reconnected:.1f}s after the broker; {dropped} stale "
          f"task(s) dropped; {len(resumed)} run(s) resumed from failure")
    with dg.instance_for_test() as local:
        dep = Deployment(data_url, pg_url, local)
        dep.store  # noqa: B018
        register_id_ranges(local, dep.catalog, 1000)
        for t in types:
            assert dep.materialize(DescriptorPartition(t, RANGE)).success
    celery_rows, local_rows = index_rows(data_url), index_rows(pg_url)
    assert len(celery_rows) > 50
    assert celery_rows == local_rows
    keys = [(r[0], r[1]) for r in celery_rows]
    assert len(keys) == len(set(keys))
    # published once: per partition and asset at most one materialization wrote rows; a second
    # one only where the broker went between a step's commit and its end, and that re-run wrote
    # nothing (when the cut landed after the commit and before the step's event was stored, the
    # resume's materialization is the only one and reads its input unchanged: 0 rows written)
    for asset in ("raw_descriptors", "normalized_descriptors", "descriptor_index"):
        by_partition = materializations(instance, asset)
        assert sorted(by_partition) == sorted(f"{RANGE.key}|{t}" for t in types), asset
        for key, records in by_partition.items():
            written = [rows_written(r) for r in records]
            assert 1 <= len(records) <= 2 and sum(w > 0 for w in written) <= 1, (asset, key)
    # the step that was mid-flight when the broker went was stopped: only its resume published
    (track_raw,) = materializations(instance, "raw_descriptors")[f"{RANGE.key}|track"]
    assert track_raw.run_id in resumed_ids, "the cut step published in the failed run"


def test_terminating_a_run_stops_its_step_on_the_worker(
    cluster: tuple[Cluster, dg.DagsterInstance],
) -> None:
    """The UI's Terminate marks the run CANCELING and interrupts its run process, and
    dagster-celery then revokes its tasks without stopping the one running: the run watch
    stops it, so the run ends while the step is still blocked, and nothing is published."""
    c, instance = cluster
    worker = c.start_worker("bulk")
    with c.catalog_table_locked("artist") as waiting_for_lock:
        proc = c.launch("run-artist", partition_tags("artist", "full"))
        logs = [c.log(worker), c.log("run-artist")]
        wait_for("the raw step to block in its catalog read", lambda: waiting_for_lock() == 1,
                 120, logs)
        (record,) = runs_by_mode(instance, "full")
        run = record.dagster_run
        # what DefaultRunLauncher.terminate does: CANCELING, then interrupt the run's execution
        instance.report_run_canceling(run)
        proc.send_signal(signal.SIGINT)
        wait_for("the step to be stopped", lambda: waiting_for_lock() == 0, 30, logs)
        finish(c, "run-artist", proc, timeout=60)
        ended = instance.get_run_by_id(run.run_id)
        assert ended is not None and ended.status == dg.DagsterRunStatus.CANCELED
    text = c.log(worker).read_text(errors="replace")
    assert f"stopping step raw_descriptors of run {run.run_id}: the run is CANCELING" in text
    time.sleep(2)  # a step that had survived would now read the unlocked table and publish
    published = instance.fetch_materializations(dg.AssetKey("raw_descriptors"), limit=10)
    assert published.records == [], "the terminated run's step published"


def test_the_workers_script_starts_lists_drains_and_stops_workers(
    cluster: tuple[Cluster, dg.DagsterInstance],
) -> None:
    c, _ = cluster
    started = c.script("start", "bulk", "2")
    assert started.returncode == 0, started.stderr
    groups = c.script_pidfiles
    nodes = sorted(f"{name}@{socket.gethostname()}" for name in groups)
    assert len(nodes) == 2 and all(group_alive(g) for g in groups.values())
    status = c.script("status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines() == [f"{node}: bulk" for node in nodes]
    drained = c.script("drain", "bulk")
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout.count("no longer consuming from bulk") == 2
    status = c.script("status")
    assert status.stdout.splitlines() == [f"{node}: -" for node in nodes]
    stopped = c.script("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not any(group_alive(g) for g in groups.values()), "every worker process exited"
    assert c.script_pidfiles == {}
    assert c.script("status").returncode == 1  # no worker answers any more


def test_stop_lets_the_running_step_finish(cluster: tuple[Cluster, dg.DagsterInstance]) -> None:
    c, instance = cluster
    assert c.script("start", "bulk", "1").returncode == 0
    ((name, group),) = c.script_pidfiles.items()
    log = Path(c.env["DAGSTER_HOME"]) / "celery" / f"{name}.log"
    with c.catalog_table_locked("artist"):  # the raw step blocks inside its catalog read
        c.launch("run-artist", partition_tags("artist", "full"))
        wait_for("the worker to take the raw step", lambda: re.search(
            r"raw_descriptors - STEP_START", log.read_text(errors="replace")), 120,
            [log, c.log("run-artist")])
        stopping = subprocess.Popen(["bash", "scripts/celery_workers.sh", "stop"],
                                    cwd=Path(__file__).resolve().parents[1], env=c.env)
        time.sleep(5)
        assert stopping.poll() is None and group_alive(group), "stop waits for the step"
    assert stopping.wait(timeout=120) == 0
    assert not group_alive(group)
    assert re.search(r"Task execute_plan\[\S+\] succeeded", log.read_text(errors="replace"))
    published = instance.fetch_materializations(dg.AssetKey("raw_descriptors"), limit=10)
    assert len(published.records) == 1, "the step finished and published after the stop"
