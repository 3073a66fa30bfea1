"""The webserver's /graphql endpoint as bench.launched drives it: the queries and mutations the
UI's client sends, and the names they select (the code location, the job the sensors request,
the two refresh sensors, the run and backfill statuses that count as active or done)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

LOCATION = "descriptor_pipeline"
JOB = "refresh_descriptors"  # what the sensors request
SENSORS = ("incremental_refresh_sensor", "refresh_queue_sensor")
ACTIVE = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

WORKSPACE = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on RepositoryLocation { repositories { name } } } } } } }"""
DAEMONS = "{ instance { daemonHealth { allDaemonStatuses { required healthy } } } }"
FAILURES = """query F($id: ID!) { logsForRun(runId: $id, limit: 10000) { __typename
  ... on EventConnection { events { __typename
    ... on ExecutionStepFailureEvent { stepKey error { message } }
    ... on EngineEvent { message error { message } }
    ... on RunFailureEvent { message } } } } }"""
GROUP_ASSETS = "query G($g: AssetGroupSelector!) { assetNodes(group: $g) { assetKey { path } } }"
LAUNCH_BACKFILL = """mutation B($p: LaunchBackfillParams!) { launchPartitionBackfill(
  backfillParams: $p) { __typename ... on LaunchBackfillSuccess { backfillId }
  ... on Error { message } } }"""
BACKFILL = """query B($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status } } }"""
RUNS = """query R($f: RunsFilter) { runsOrError(filter: $f) { __typename ... on Runs {
  results { runId status creationTime startTime endTime } } ... on Error { message } } }"""
LAUNCH_RUN = """mutation L($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on Error { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
START_SENSOR = """mutation S($s: SensorSelector!) { startSensor(sensorSelector: $s) {
  __typename ... on Error { message } } }"""
SENSOR_CURSOR = """query C($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
  ... on Sensor { sensorState { typeSpecificData { ... on SensorData { lastCursor } } } } } }"""


class GraphQL:
    """The webserver's /graphql endpoint, sent what the UI's client sends."""

    def __init__(self, port: int) -> None:
        self.url, self.repository = f"http://127.0.0.1:{port}/graphql", ""

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise RuntimeError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    def location_loaded(self) -> bool:
        try:
            entries = self(WORKSPACE)["workspaceOrError"].get("locationEntries") or []
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False
        for entry in entries:
            loaded = entry["locationOrLoadError"] or {}
            if entry["name"] == LOCATION and loaded["__typename"] == "RepositoryLocation":
                self.repository = loaded["repositories"][0]["name"]
                return True
        return False

    def daemons_healthy(self) -> bool:
        statuses = self(DAEMONS)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return all(s["healthy"] for s in statuses if s["required"])

    def runs(self, **runs_filter: Any) -> list[dict[str, Any]]:
        result = self(RUNS, f=runs_filter)["runsOrError"]
        if result["__typename"] != "Runs":
            raise RuntimeError(result)
        return result["results"]

    def selector(self, **names: str) -> dict[str, str]:
        return {"repositoryLocationName": LOCATION, "repositoryName": self.repository, **names}
