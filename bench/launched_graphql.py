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
PARTITION_TAGS = """query T($r: RepositorySelector!, $s: String!, $n: String!) {
  partitionSetOrError(repositorySelector: $r, partitionSetName: $s) { __typename
  ... on PartitionSet { partition(partitionName: $n) {
  tagsOrError { __typename ... on PartitionTags { results { key value } }
  ... on PythonError { message } } } } ... on Error { message } } }"""
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

    def partition_tags(self, job: str, partition_key: str) -> list[dict[str, str]]:
        """The tags the launchpad puts on a run of `job` for one partition (it asks the same
        query when a partition is picked): `dagster/partition` and one per dimension."""
        found = self(PARTITION_TAGS, r=self.selector(), s=f"{job}_partition_set", n=partition_key)
        found = found["partitionSetOrError"]
        tags = ((found.get("partition") or {}).get("tagsOrError")) or {}
        if "results" not in tags:
            raise RuntimeError(f"no tags for partition {partition_key} of {job}: {found}")
        return [{"key": t["key"], "value": t["value"]} for t in tags["results"]]

    def launchpad_run(self, job: str, partition_key: str, tags: dict[str, str]) -> str:
        """Launch one run of `job` for one partition with extra tags, as the launchpad does
        (pick the partition, *Edit tags*, *Launch run*); the run queue starts it."""
        every = self.partition_tags(job, partition_key)
        every += [{"key": k, "value": v} for k, v in tags.items()]
        params = {"selector": self.selector(jobName=job), "executionMetadata": {"tags": every}}
        launched = self(LAUNCH_RUN, p=params)["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(f"{job} {partition_key} not launched: {launched}")
        return str(launched["run"]["runId"])
