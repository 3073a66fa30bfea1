"""kill -9 of a run launched by a real `dagster-daemon run`, in the middle of a step: the run is
marked FAILED, the daemon's run_retries re-executes it from failure, the pool slot the dead step
held is given back, and the index equals a clean build row for row.

The step is held still deterministically: the test takes the partition's normalize lock
(`partition_lock`) before the run starts, so the run commits its raw step and then waits inside
its normalize step, where it is killed. The instance file is this repo's `dagster.yaml` (plus the
dagster-postgres storage on PostgreSQL) with the run monitoring's intervals shortened, as the docs
say an operator may.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.defs.assets import WRITER_POOL
from descriptor_pipeline.defs.partitions import register_id_ranges
from descriptor_pipeline.demo.seed import seed_catalog
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.index_store import open_store
from descriptor_pipeline.partition_lock import held
from descriptor_pipeline.store_engine import create_missing_database
from descriptor_pipeline.tables import descriptor_index
from descriptor_pipeline_tests.conftest import Deployment, write_instance_file
from descriptor_pipeline_tests.processes import stop, wait_for

ARTISTS_0 = DescriptorPartition("artist", IdRange(0, 999))
SHORT_MONITORING = {
    "run_monitoring": {"poll_interval_seconds": 1, "free_slots_after_run_end_seconds": 1}
}
VOLATILE = {"doc_id", "published_at"}  # the row's surrogate key and when it was written


def _index(url: str) -> dict[tuple[str, int], tuple[object, ...]]:
    columns = [c for c in descriptor_index.c if c.name not in VOLATILE]
    with open_store(url).engine.connect() as conn:
        return {(r[0], r[1]): tuple(r) for r in conn.execute(sa.select(*columns))}


def _pid_of(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The run worker's pid, from the engine event Dagster writes when the process starts."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        message = record.message or ""
        if message.startswith("Started process for run (pid: "):
            return int(message.split("pid: ")[1].split(")")[0])
    return None


def _step_started(instance: dg.DagsterInstance, run_id: str, step: str) -> bool:
    return any(
        e.step_key == step
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
    )


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """The daemon's instance, catalog and index on SQLite files, or all three in one PostgreSQL
    database (dagster-postgres's tables beside the pipeline's); and the URL of an empty index
    of the same backend for the clean build."""
    if request.param == "sqlite":
        write_instance_file(home / "dagster_home", overrides=SHORT_MONITORING)
        yield request.param, f"sqlite:///{tmp_path / 'clean_index.sqlite'}"
        return
    url = request.getfixturevalue("pg_url")
    for name in ("DESCRIPTOR_CATALOG_URL", "DESCRIPTOR_INDEX_URL"):
        monkeypatch.setenv(name, url)
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", "postgresql+psycopg2://" + url.split("://", 1)[1])
    write_instance_file(home / "dagster_home", postgres=True, overrides=SHORT_MONITORING)
    clean = f"{url}_clean"
    create_missing_database(clean)
    try:
        yield request.param, clean
    finally:
        open_store.cache_clear()
        admin = sa.create_engine(
            request.getfixturevalue("pg_admin_url"), isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            name = sa.make_url(clean).database
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_killed_run_is_failed_retried_and_the_index_is_the_clean_one(
    home: Path, backend: tuple[str, str]
) -> None:
    _, clean_url = backend
    catalog_url, index_url = (
        os.environ["DESCRIPTOR_CATALOG_URL"],
        os.environ["DESCRIPTOR_INDEX_URL"],
    )
    store = open_store(index_url)  # migrates first: on PostgreSQL the seed grants to its roles
    source = open_catalog(catalog_url, None)
    seed_catalog(source.engine, source.config)
    log = home / "daemon.log"
    bin_dir = Path(sys.executable).parent
    with dg.DagsterInstance.get() as instance, contextlib.ExitStack() as stack:
        register_id_ranges(instance, source, 1000)
        daemon = subprocess.Popen(
            [str(bin_dir / "dagster-daemon"), "run", "-w", str(home / "workspace.yaml")],
            cwd=home,
            env=os.environ.copy(),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stack.callback(stop, daemon)
        lock = stack.enter_context(contextlib.ExitStack())
        lock.enter_context(held(store.engine, ARTISTS_0, "normalize"))
        tags = {
            "dagster/partition": ARTISTS_0.key,
            "dagster/partition/id_range": ARTISTS_0.id_range.key,
            "dagster/partition/resource_type": ARTISTS_0.resource_type,
        }
        launched = subprocess.run(
            [
                str(bin_dir / "dagster"),
                "job",
                "launch",
                "-j",
                "refresh_descriptors",
                "-w",
                str(home / "workspace.yaml"),
                "--tags",
                json.dumps(tags),
            ],
            cwd=home,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert launched.returncode == 0, launched.stderr[-3000:]
        (first,) = instance.get_run_records(filters=dg.RunsFilter(tags=tags))
        run_id = first.dagster_run.run_id

        def waiting_in_normalize() -> bool:
            return _step_started(instance, run_id, "normalized_descriptors")

        wait_for("the run to wait inside its normalize step", waiting_in_normalize, 240, [log])
        pid = _pid_of(instance, run_id)
        assert pid is not None
        parent = Path(f"/proc/{pid}/status").read_text().split("PPid:")[1].split()[0]
        spawner = Path(f"/proc/{parent}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        print(f"\nrun worker {pid} was spawned by: {spawner[:160]}")
        time.sleep(1)  # inside the step, blocked on the partition lock
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()

        def failed() -> bool:
            run = instance.get_run_by_id(run_id)
            return run is not None and run.status == dg.DagsterRunStatus.FAILURE

        wait_for("the killed run to be marked FAILED", failed, 60, [log])
        detected = time.monotonic() - killed_at

        def retry() -> dg.DagsterRun | None:
            runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": run_id}))
            return runs[0] if runs else None

        wait_for("run_retries to re-execute the run", retry, 120, [log])
        retried = time.monotonic() - killed_at

        def slot_given_back() -> bool:
            info = instance.event_log_storage.get_concurrency_info(WRITER_POOL)
            return all(slot.run_id != run_id for slot in info.claimed_slots)

        wait_for("the dead step's pool slot to be freed", slot_given_back, 60, [log])
        freed = time.monotonic() - killed_at
        lock.close()  # let the retry through
        released = time.monotonic()

        def succeeded() -> dg.DagsterRun | None:
            run = retry()
            return run if run is not None and run.status == dg.DagsterRunStatus.SUCCESS else None

        resumed = wait_for("the retry to succeed", succeeded, 240, [log])
        finished = time.monotonic() - released
        # the retry ran from failure: the raw step the dead run had finished was not run again
        assert not _step_started(instance, resumed.run_id, "raw_descriptors")
    assert resumed.tags["dagster/partition"] == ARTISTS_0.key

    with dg.instance_for_test() as clean_instance:
        clean = Deployment(catalog_url, clean_url, clean_instance)
        clean.register()
        assert clean.materialize(ARTISTS_0).success
    assert _index(index_url) == _index(clean_url) and len(_index(clean_url)) > 900
    print(
        f"\nkill -9 -> run FAILED {detected:.1f}s, retry run created {retried:.1f}s, pool slot "
        f"freed {freed:.1f}s; lock released -> retry succeeded {finished:.1f}s"
    )
