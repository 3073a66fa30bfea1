"""One id reindexed by one run launched from the launchpad: a real webserver and daemon.

An operator who wants an id in the index now, without waiting for a sensor, opens the launchpad of
`refresh_descriptors`, picks the id's partition and adds the tag `descriptor/ids=<id>`
(docs/refresh.md, "Targeted reindex"). The run queue starts it; the assets read, diff and write
only the tagged ids. The test sends the launchpad's own GraphQL (the partition's tags, then
`launchRun`) and checks that the tagged id is republished and its renamed neighbour is not.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg

from bench.launched_graphql import FINISHED, JOB, GraphQL
from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.id_ranges import DescriptorPartition
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.refresh.tags import TAG_IDS, run_tags
from descriptor_pipeline_tests.conftest import seeded_demo
from descriptor_pipeline_tests.processes import stop, wait_for
from descriptor_pipeline_tests.test_webserver_e2e import free_port, published_ids, start

BIN = Path(sys.executable).parent
RANGE_SIZE = 10_000  # one id range holds every demo artist


def rename(source: CatalogSource, resource_id: int, name: str) -> None:
    """A catalog edit that leaves `updated_at` alone: no sensor would see it."""
    cfg = source.config.resource("artist")
    table = source.resource_table("artist")
    with source.engine.begin() as conn:
        conn.execute(
            table.update()
            .where(table.c[cfg.id_column] == resource_id)
            .values({cfg.name_column: name})
        )


def indexed_name(store: IndexStore, resource_id: int) -> str:
    document = store.document("artist", resource_id)
    assert document is not None, f"artist {resource_id} is not in the index"
    return str(document["name"])


def test_a_launchpad_run_tagged_with_ids_reindexes_only_those_ids(home: Path) -> None:
    demo = seeded_demo(RANGE_SIZE)
    source, store, (id_range,) = demo.source, demo.store, demo.ranges
    key = DescriptorPartition("artist", id_range).key

    port = free_port()
    gql = GraphQL(port)
    workspace = str(home / "workspace.yaml")
    logs = [home / "webserver.log", home / "daemon.log"]
    processes: list[subprocess.Popen[bytes]] = []

    def finished(run_id: str) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            (run,) = gql.runs(runIds=[run_id])
            return run if run["status"] in FINISHED else None

        return wait_for(f"run {run_id} to finish", done, 120, logs)

    try:
        webserver = [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)]
        processes.append(start([*webserver, "-w", workspace], home, logs[0]))
        daemon = [str(BIN / "dagster-daemon"), "run", "-w", workspace]
        processes.append(start(daemon, home, logs[1]))
        wait_for("the webserver to load the code location", gql.location_loaded, 90, logs)

        whole = finished(gql.launchpad_run(JOB, key, run_tags("full")))
        assert whole["status"] == "SUCCESS", whole
        first, second = sorted(published_ids(store, "artist"))[:2]
        untagged_before = indexed_name(store, second)
        rename(source, first, "Renamed From The Launchpad")
        rename(source, second, "Renamed But Not Tagged")

        scoped_id = gql.launchpad_run(JOB, key, {**run_tags("targeted"), TAG_IDS: str(first)})
        scoped = finished(scoped_id)
    finally:
        for process in reversed(processes):
            stop(process)

    assert scoped["status"] == "SUCCESS", scoped
    assert "Renamed From The Launchpad" in indexed_name(store, first)
    # the run read and wrote only the tagged id: the untagged edit waits for its own refresh
    assert indexed_name(store, second) == untagged_before
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(scoped_id)
    assert run is not None and run.tags[TAG_IDS] == str(first)
    assert run.tags["dagster/partition/resource_type"] == "artist"  # as the launchpad tags it
    assert run.tags["dagster/partition/id_range"] == id_range.key
