"""Figures 2. and 3. of bench.launched: a catalog edit found by `incremental_refresh_sensor`,
and one id reindexed through `refresh_queue_sensor` (asked by the `reindex_resources` job and by
a row in `descriptor_refresh_requests`), each timed from the edit or the request to the index on
an idle deployment. `Row` is the catalog row edited, restored at the end."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME as SENSOR_DAEMON_LOOP_SECONDS

from bench.launched_graphql import (
    ACTIVE,
    FINISHED,
    JOB,
    LAUNCH_RUN,
    SENSOR_CURSOR,
    SENSORS,
    START_SENSOR,
    GraphQL,
)
from descriptor_pipeline.refresh.queue import queue_depth
from descriptor_pipeline.refresh.requests import submit_request
from descriptor_pipeline.refresh.tags import TAG_IDS, run_tags
from descriptor_pipeline.tables import refresh_requests
from descriptor_pipeline_tests.processes import wait_for


def offsets(run: dict[str, Any] | None, since: float, prefix: str = "run") -> dict[str, Any]:
    """When a run was requested (created), started and ended, in seconds after `since`."""
    fields = {"requested": "creationTime", "started": "startTime", "ended": "endTime"}
    if run is None:
        return {}
    return {f"{prefix}_{k}_after": run[f] - since if run[f] else None for k, f in fields.items()}


class Row:
    """The catalog row the bench renames (restored at the end): the first one the backfill
    published, so it is not a blocked one. A digit tag in its new name shows in the index."""

    def __init__(self, source: Any, store: Any, resource_type: str) -> None:
        self.source, self.store, self.resource_type = source, store, resource_type
        cfg = source.config.resource(resource_type)
        self.table = source.resource_table(resource_type)
        self.id_col = self.table.c[cfg.id_column]
        self.name, self.ts = cfg.name_column, cfg.updated_at_column
        query = "SELECT min(resource_id) FROM descriptor_index WHERE resource_type = :t"
        with store.engine.connect() as conn:
            self.id = int(conn.execute(sa.text(query), {"t": resource_type}).scalar_one())
        columns = [self.table.c[self.name], self.table.c[self.ts]]
        with source.engine.connect() as conn:
            found = conn.execute(sa.select(*columns).where(self.id_col == self.id))
            self.original = dict(found.mappings().one())
        self.stamp, self.count = f"{int(time.time()) % 100_000:05d}", 0

    def rename(self, bump: bool) -> str:
        self.count += 1
        tag = f"{self.stamp}{self.count:02d}"
        values: dict[str, Any] = {self.name: f"Launched Bench Ωmega {tag}"}
        if bump:
            values[self.ts] = datetime.now(UTC)
        with self.source.engine.begin() as conn:
            conn.execute(self.table.update().where(self.id_col == self.id).values(values))
        return tag

    def restore(self) -> None:
        with self.source.engine.begin() as conn:
            conn.execute(self.table.update().where(self.id_col == self.id).values(self.original))

    def wait_published(
        self, gql: GraphQL, tag: str, since: float, timeout: float, logs: list[Path]
    ) -> tuple[float, dict[str, Any] | None]:
        """Seconds from `since` until the index has the tag, and the refresh run that did it;
        a failed refresh run ends the wait at once instead of at the timeout."""

        def probe() -> float | None:
            document = self.store.document(self.resource_type, self.id)
            if document and tag in document["name"]:
                return time.time()
            failed = gql.runs(pipelineName=JOB, createdAfter=since, statuses=["FAILURE"])
            if failed:
                raise RuntimeError(f"refresh run {failed[0]['runId']} failed; see daemon.log")
            return None

        seen = wait_for(f"{self.resource_type} {self.id} in the index", probe, timeout, logs)
        runs = gql.runs(pipelineName=JOB, createdAfter=since)
        if not runs:
            return seen - since, None
        run_id = min(runs, key=lambda r: r["creationTime"])["runId"]

        def ended() -> dict[str, Any] | None:  # it goes on after publishing (checks)
            (run,) = gql.runs(runIds=[run_id])
            return run if run["status"] in FINISHED else None

        return seen - since, wait_for(f"run {run_id} to end", ended, timeout, logs)


def start_sensors(gql: GraphQL, logs: list[Path]) -> float:
    """Both refresh sensors on (the UI's toggle); seconds to the incremental one's first tick,
    which only records where the catalog is."""
    started = time.time()
    for name in SENSORS:
        result = gql(START_SENSOR, s=gql.selector(sensorName=name))["startSensor"]
        if result["__typename"] != "Sensor":
            raise RuntimeError(f"{name} not started: {result}")

    def cursor() -> str | None:
        found = gql(SENSOR_CURSOR, s=gql.selector(sensorName=SENSORS[0]))["sensorOrError"]
        return ((found.get("sensorState") or {}).get("typeSpecificData") or {}).get("lastCursor")

    wait_for("the incremental sensor's first tick", cursor, 300, logs)
    return time.time() - started


def wait_quiet(gql: GraphQL, store: Any, logs: list[Path]) -> None:
    """No run queued or running, refresh queue and requests empty (the fan-out of an earlier edit
    drained): every figure is one change on an idle deployment."""
    requests = refresh_requests
    pending = sa.select(sa.func.count()).where(requests.c.status == "pending")

    def quiet() -> bool:
        with store.engine.connect() as conn:
            waiting = conn.execute(pending).scalar_one()
        return not waiting and not queue_depth(store) and not gql.runs(statuses=ACTIVE)

    wait_for("runs and the refresh queue to drain", quiet, 900, logs)


def through_sensors(
    gql: GraphQL, row: Row, partition_key: str, repeats: int, logs: list[Path], seed: int = 11
) -> dict[str, list]:
    """2: rename with an `updated_at` bump, as the catalog's app does. 3: rename WITHOUT a bump
    (the incremental sensor cannot see it), then ask for the id's reindex three ways: the
    `reindex_resources` job and a request row (both through `refresh_queue_sensor`), and one run
    of the asset job for the id's partition, scoped by tag, as an operator launches it from the
    launchpad (no sensor: the run queue launches it).

    Each edit or request waits a random 0-5 s after the deployment went quiet, so it lands at a
    random point of the sensor daemon's 5 s loop, as a user's would. Without it the bench's own
    rhythm (quiet is seen just after the previous path's run ended) put every try of a path at
    about the same point of the loop: 0.4-1.1 s to the request in one run, 4-5 s in another."""
    out: dict[str, list[dict[str, Any]]] = {}
    phase = random.Random(seed)
    ways = ("incremental_sensor", "reindex_resources_job", "refresh_request_row", "scoped_run")
    for way in ways:
        for _ in range(repeats):
            wait_quiet(gql, row.store, logs)
            time.sleep(phase.uniform(0, SENSOR_DAEMON_LOOP_SECONDS))
            tag, asked, job_run = row.rename(bump=way == "incremental_sensor"), time.time(), None
            if way == "reindex_resources_job":
                config = {"resource_type": row.resource_type, "ids": [row.id]}
                params = {
                    "selector": gql.selector(jobName="reindex_resources"),
                    "runConfigData": {"ops": {"queue_reindex": {"config": config}}},
                }
                launched = gql(LAUNCH_RUN, p=params)["launchRun"]
                if launched["__typename"] != "LaunchRunSuccess":
                    raise RuntimeError(f"reindex_resources not launched: {launched}")
                job_run = launched["run"]["runId"]
            elif way == "scoped_run":  # one run, scoped to the id, no sensor on the way
                scope = {**run_tags("targeted"), TAG_IDS: str(row.id)}
                gql.launchpad_run(JOB, partition_key, scope)
            elif way == "refresh_request_row":
                submit_request(row.store, row.resource_type, [row.id], "bench.launched")
            seconds, run = row.wait_published(gql, tag, asked, 600, logs)
            entry = {"seconds": seconds, **offsets(run, asked)}
            if job_run:
                entry.update(offsets(gql.runs(runIds=[job_run])[0], asked, "reindex_job"))
            out.setdefault(way, []).append(entry)
    return out
