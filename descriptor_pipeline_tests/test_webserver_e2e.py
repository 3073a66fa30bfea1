"""End to end through the UI's API: a real `dagster-webserver` and `dagster-daemon run`.

The test talks to the webserver's GraphQL endpoint with the mutations the UI sends. It launches an
asset backfill of the `descriptors` group for two partitions (*Materialize…* with chosen
partitions). One of them fails for real: its catalog table is missing, so `raw_descriptors` raises
(after its RetryPolicy gave up). The test repairs the catalog and re-executes the failed run from
failure (the run page's *Re-execute > From failure*), then checks the index.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.defs.assets import GROUP, descriptor_assets
from descriptor_pipeline.id_ranges import IdRange
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.tables import descriptor_index, normalized_descriptors
from descriptor_pipeline_tests.conftest import seeded_demo
from descriptor_pipeline_tests.processes import stop, wait_for

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOCATION = "descriptor_pipeline"
# the production default: one id range then covers the whole demo catalog per resource type
RANGE_SIZE = 10_000
# the UI's selection: every asset of the `descriptors` group
ASSETS = [
    a.key.to_user_string() for a in descriptor_assets if GROUP in a.group_names_by_key.values()
]
ALBUM_TABLE, ALBUM_TABLE_AWAY = "music_album", "music_album_migrating"
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
FINISHED_RUN = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""
REEXECUTE_RUN = """
mutation LaunchPipelineReexecution($reexecutionParams: ReexecutionParams) {
  launchPipelineReexecution(reexecutionParams: $reexecutionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}
"""
RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      runId status parentRunId rootRunId stepKeysToExecute tags { key value }
    }
    ... on Error { message }
  }
}
"""
STEP_FAILURES = """
query StepFailures($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run {
      eventConnection(limit: 1000) {
        events {
          ... on ExecutionStepFailureEvent {
            stepKey
            error { message errorChain { error { message } } }
          }
        }
      }
    }
  }
}
"""
BACKFILL = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      status
      partitionNames
      runs { runId status tags { key value } }
      assetBackfillData {
        assetBackfillStatuses {
          ... on AssetPartitionsStatusCounts {
            assetKey { path }
            numPartitionsTargeted
            numPartitionsMaterialized
            numPartitionsFailed
          }
        }
      }
    }
    ... on Error { message }
  }
}
"""
WORKSPACE = """
query Workspace {
  workspaceOrError {
    ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename } } }
  }
}
"""


def free_port() -> int:
    """A port nobody listens on right now, on the loopback interface only."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GraphQL:
    """The webserver's /graphql endpoint, as the UI's Apollo client uses it."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(
            f"{self.base}/graphql", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.load(response)
        assert not payload.get("errors"), payload["errors"]
        return payload["data"]

    def location_loaded(self) -> bool:
        """True once the webserver serves the project's code location."""
        try:
            data = self(WORKSPACE)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False
        entries = data["workspaceOrError"].get("locationEntries") or []
        return any(
            e["name"] == LOCATION
            and e["loadStatus"] == "LOADED"
            and e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
            for e in entries
        )

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        result = self(BACKFILL, backfillId=backfill_id)["partitionBackfillOrError"]
        assert result["__typename"] == "PartitionBackfill", result
        return result


def launched_id(result: dict[str, Any]) -> str:
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return str(result["backfillId"])


def counts_by_asset(backfill: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    """(targeted, materialized, failed) partitions per asset of an asset backfill."""
    return {
        s["assetKey"]["path"][-1]: (
            s["numPartitionsTargeted"],
            s["numPartitionsMaterialized"],
            s["numPartitionsFailed"],
        )
        for s in backfill["assetBackfillData"]["assetBackfillStatuses"]
    }


def partition_range(run: dict[str, Any]) -> tuple[str, str]:
    """A packed run's range tags. It carries no `dagster/partition/resource_type`, so the
    per-type run limit does not hold it (docs/orchestration.md, "Concurrency")."""
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert "dagster/partition/resource_type" not in tags
    return (
        tags["dagster/asset_partition_range_start"],
        tags["dagster/asset_partition_range_end"],
    )


def published_ids(store: IndexStore, resource_type: str) -> set[int]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(descriptor_index.c.resource_id).where(
                descriptor_index.c.resource_type == resource_type
            )
        )
        return {int(r[0]) for r in rows}


def expected_documents(source: CatalogSource, store: IndexStore, partition_key: str) -> set[int]:
    """The partition's catalog ids that belong in the index: not quarantined, not blocked."""
    id_range, _, resource_type = partition_key.partition("|")
    span, table = IdRange.parse(id_range), normalized_descriptors
    with store.engine.connect() as conn:
        blocked = {
            int(r[0])
            for r in conn.execute(
                sa.select(table.c.resource_id).where(
                    table.c.resource_type == resource_type,
                    table.c.resource_id.between(span.first, span.last),
                    table.c.blocked,
                )
            )
        }
    quarantined = {int(i) for i in store.quarantine_rows(partition_key)["resource_id"]}
    in_catalog = source.ids(resource_type, span)
    return set(in_catalog) - blocked - quarantined


def step_failures(gql: GraphQL, run_id: str) -> dict[str, str]:
    """Step key -> the whole error chain's text, as the run page's event log shows it."""
    events = gql(STEP_FAILURES, runId=run_id)["runOrError"]["eventConnection"]["events"]
    return {
        e["stepKey"]: "\n".join(
            [e["error"]["message"], *(c["error"]["message"] for c in e["error"]["errorChain"])]
        )
        for e in events
        if e.get("stepKey") and e.get("error")
    }


def rename_table(source: CatalogSource, old: str, new: str) -> None:
    with source.engine.begin() as conn:
        conn.execute(sa.text(f'ALTER TABLE "{old}" RENAME TO "{new}"'))


def start(args: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """A dagster process in its own process group, so stop() reaches its children too."""
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=os.environ.copy(),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_ui_backfill_then_reexecute_the_failed_partition_from_failure(home: Path) -> None:
    demo = seeded_demo(RANGE_SIZE)
    source, store, (id_range,) = demo.source, demo.store, demo.ranges
    artist_key, album_key = f"{id_range.key}|artist", f"{id_range.key}|album"
    # a catalog migration is under way: the album table is not where the mapping says
    rename_table(source, ALBUM_TABLE, ALBUM_TABLE_AWAY)

    port = free_port()
    gql = GraphQL(port)
    workspace = str(home / "workspace.yaml")
    logs = [home / "webserver.log", home / "daemon.log"]
    processes: list[subprocess.Popen[bytes]] = []
    started = time.monotonic()
    try:
        webserver = [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)]
        processes.append(start([*webserver, "-w", workspace], home, logs[0]))
        wait_for("the webserver to load the code location", gql.location_loaded, 90, logs)

        # Assets > select the group's three assets > Materialize… > chosen partitions
        backfill_id = launched_id(
            gql(
                LAUNCH_BACKFILL,
                backfillParams={
                    "assetSelection": [{"path": [name]} for name in ASSETS],
                    "partitionNames": [artist_key, album_key],
                    "tags": [],
                },
            )["launchPartitionBackfill"]
        )
        # launched before the daemon starts, so the daemon's first backfill iteration takes it
        daemon = [str(BIN / "dagster-daemon"), "run", "-w", workspace]
        processes.append(start(daemon, home, logs[1]))

        def backfill_done() -> dict[str, Any] | None:
            backfill = gql.backfill(backfill_id)
            return backfill if backfill["status"] in TERMINAL else None

        backfill = wait_for("the backfill to finish", backfill_done, 150, logs)
        backfill_seconds = time.monotonic() - started
        assert backfill["status"] == "COMPLETED_FAILED", backfill
        # the two partitions share an id range: the backfill packs them into one run
        # (BackfillPolicy.multi_run); the artist partition finishes its raw step, the album
        # partition fails it, so the run stops before the steps downstream of raw
        assert counts_by_asset(backfill) == {
            "raw_descriptors": (2, 1, 1),
            "normalized_descriptors": (2, 0, 2),
            "descriptor_index": (2, 0, 2),
        }
        (run,) = backfill["runs"]
        assert run["status"] == "FAILURE"
        assert partition_range(run) == (artist_key, album_key)
        assert published_ids(store, "artist") == published_ids(store, "album") == set()
        failed_run_id = run["runId"]
        failures = step_failures(gql, failed_run_id)
        assert list(failures) == ["raw_descriptors"], failures
        assert f"no such table: {ALBUM_TABLE}" in failures["raw_descriptors"]

        # the migration is done; then the failed run's page: Re-execute > From failure
        rename_table(source, ALBUM_TABLE_AWAY, ALBUM_TABLE)
        launched = gql(
            REEXECUTE_RUN,
            reexecutionParams={"parentRunId": failed_run_id, "strategy": "FROM_FAILURE"},
        )["launchPipelineReexecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        retry_id = launched["run"]["runId"]
        retry_started = time.monotonic()

        def retry_done() -> dict[str, Any] | None:
            run = gql(RUN, runId=retry_id)["runOrError"]
            return run if run["status"] in FINISHED_RUN else None

        retry = wait_for("the re-executed run to finish", retry_done, 90, logs)
        retry_seconds = time.monotonic() - retry_started
        retry_failures = step_failures(gql, retry_id) if retry["status"] != "SUCCESS" else {}
    finally:
        for process in reversed(processes):
            stop(process)

    assert retry["status"] == "SUCCESS", (retry, retry_failures)
    assert (retry["parentRunId"], retry["rootRunId"]) == (failed_run_id, failed_run_id)
    assert partition_range(retry) == (artist_key, album_key)
    # from failure: the step that raised, and everything after it that had not run
    assert set(ASSETS) <= set(retry["stepKeysToExecute"] or [])
    albums = expected_documents(source, store, album_key)
    assert albums and published_ids(store, "album") == albums
    artists = expected_documents(source, store, artist_key)
    assert artists and published_ids(store, "artist") == artists
    print(
        f"\nwebserver + daemon: backfill done {backfill_seconds:.1f}s after start, "
        f"re-execution from failure {retry_seconds:.1f}s"
    )
