"""End to end: a real `dagster-daemon run` on a temp SQLite instance keeps the index fresh.

The test changes the catalog as the app would and waits (bounded) for the incremental sensor,
the queued run coordinator and a launched run process to put the change into the index.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import WorkspaceFileTarget

from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.defs.partitions import register_id_ranges
from descriptor_pipeline.demo.seed import seed_catalog
from descriptor_pipeline.index_store import open_store
from descriptor_pipeline.refresh.tags import TAG_MODE

REPO = Path(__file__).resolve().parents[1]
SENSOR = "incremental_refresh_sensor"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, log: Path) -> T:
    """Poll until probe returns something truthy; fail with the daemon's log otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n--- daemon log ---\n{tail}")


def test_daemon_refreshes_the_index_after_a_catalog_change(home: Path) -> None:
    source = open_catalog(os.environ["DESCRIPTOR_CATALOG_URL"], None)
    store = open_store(os.environ["DESCRIPTOR_INDEX_URL"])
    seed_catalog(source.engine, source.config)
    log = home / "daemon.log"
    with dg.DagsterInstance.get() as instance:
        register_id_ranges(instance, max(source.max_ids().values()), 1000)
        with WorkspaceProcessContext(
            instance, WorkspaceFileTarget(paths=[str(home / "workspace.yaml")])
        ) as workspace:
            context = workspace.create_request_context()
            (location,) = [context.get_code_location(n) for n in context.code_location_names]
            (repository,) = location.get_repositories().values()
            sensor = repository.get_sensor(SENSOR)
            instance.start_sensor(sensor)
        origin_id, selector_id = sensor.get_remote_origin_id(), sensor.selector_id

        def cursor() -> str | None:
            state = instance.get_instigator_state(origin_id, selector_id)
            data = state.instigator_data if state else None
            return getattr(data, "cursor", None)

        daemon = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-daemon"),
                "run",
                "-w",
                str(home / "workspace.yaml"),
            ],
            cwd=home,
            env=os.environ.copy(),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for("the sensor's first tick", cursor, 90, log)
            table = source.resource_table("artist")
            changed_at = datetime.now(UTC)
            with source.engine.begin() as conn:
                conn.execute(
                    table.update()
                    .where(table.c.id == 5)
                    .values(name="Daemon Renamed Ωmega", updated_at=changed_at)
                )
            started = time.monotonic()

            def published() -> bool:
                document = store.document("artist", 5)
                return bool(document and document["name"] == "Daemon Renamed Ωmega")

            wait_for("the index to reflect the change", published, 120, log)
            latency = time.monotonic() - started

            def finished() -> list[dg.RunRecord] | None:
                records = instance.get_run_records(
                    filters=dg.RunsFilter(tags={TAG_MODE: "incremental"})
                )
                done = records and all(r.dagster_run.is_finished for r in records)
                return records if done else None

            # the run goes on after publishing (asset checks): let it finish before stopping
            runs = wait_for("the run to finish", finished, 60, log)
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(timeout=10)
        assert [r.dagster_run.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]
        assert runs[0].dagster_run.tags["dagster/partition"] == "000000000-000000999|artist"
        assert [h.document_key for h in store.search("Daemon Renamed Ωmega")][:1] == ["artist:5"]
        print(f"\ncatalog change -> index with the daemon running: {latency:.1f}s")
