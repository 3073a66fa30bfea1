"""End to end: a real `dagster-daemon run` on a temp SQLite instance keeps the index fresh.

The sensor is started and its cursor set with the `dagster sensor` CLI, as an operator would;
the cursor is the catalog's current position (`bootstrap_position`), so the first tick already
diffs. The test changes the catalog as the app would and waits (bounded) for the incremental
sensor, the queued run coordinator and a launched run process to put the change into the index.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.id_ranges import RESOURCE_TYPES
from descriptor_pipeline.refresh.changes import IncrementalCursor, bootstrap_position
from descriptor_pipeline.refresh.tags import TAG_MODE
from descriptor_pipeline_tests.conftest import seeded_demo
from descriptor_pipeline_tests.processes import wait_for

REPO = Path(__file__).resolve().parents[1]
SENSOR = "incremental_refresh_sensor"


def dagster_cli(home: Path, *args: str) -> None:
    """`dagster <args> -w workspace.yaml` in the test's environment, bounded like the waits."""
    command = [
        str(Path(sys.executable).parent / "dagster"),
        *args,
        "-w",
        str(home / "workspace.yaml"),
    ]
    try:
        done = subprocess.run(
            command, cwd=home, env=os.environ.copy(), capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after 120s: {' '.join(args)}")
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}\n{done.stderr[-3000:]}"


def current_position(source: CatalogSource) -> str:
    """The incremental sensor's cursor at the catalog's newest rows: its first tick diffs."""
    positions = {t: bootstrap_position(source, t) for t in RESOURCE_TYPES}
    return IncrementalCursor({t: p for t, p in positions.items() if p is not None}).to_json()


def test_daemon_refreshes_the_index_after_a_catalog_change(home: Path) -> None:
    demo = seeded_demo(1000)
    source, store = demo.source, demo.store
    log = home / "daemon.log"
    with dg.DagsterInstance.get() as instance:
        dagster_cli(home, "sensor", "start", SENSOR)
        dagster_cli(home, "sensor", "cursor", SENSOR, "--set", current_position(source))

        def first_tick() -> bool:
            # the daemon logs the sensor's skip reason: it evaluated the catalog at least once
            text = log.read_text(errors="replace") if log.exists() else ""
            return any(
                SENSOR in line and "no changed partitions" in line for line in text.splitlines()
            )

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
            wait_for("the sensor's first tick", first_tick, 90, [log])
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

            wait_for("the index to reflect the change", published, 120, [log])
            latency = time.monotonic() - started

            def finished() -> list[dg.RunRecord] | None:
                records = instance.get_run_records(
                    filters=dg.RunsFilter(tags={TAG_MODE: "incremental"})
                )
                done = records and all(r.dagster_run.is_finished for r in records)
                return records if done else None

            # the run goes on after publishing (asset checks): let it finish before stopping
            runs = wait_for("the run to finish", finished, 60, [log])
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
