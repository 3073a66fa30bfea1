"""The path users run, timed: a real `dagster-webserver` and `dagster-daemon run` (issue 11, 1).

In-process figures (bench/run_benchmarks.py) leave out what a user waits for: the daemon's loops,
the run queue, a process per run that loads the code location. This drives that path as the UI
and the sensors do, against subprocesses on a fresh DAGSTER_HOME, and times:

1. a partition backfill of the `descriptors` group over every partition with rows, launched with
   the UI's GraphQL mutation, and the same partitions in-process one after another (the code
   location's own asset job: same assets and checks; a fresh index for each path);
2. catalog edit -> index through `incremental_refresh_sensor`;
3. one id reindexed through `refresh_queue_sensor`, queued by the `reindex_resources` job
   (launched from GraphQL) and by a row in `descriptor_refresh_requests`.

    .venv/bin/python -m bench.launched --catalog demo
    .venv/bin/python -m bench.launched --catalog demo --instance postgres
    .venv/bin/python -m bench.launched --catalog-url postgresql://postgres@127.0.0.1:5432/bench_100000

Nothing depends on how many runs a backfill makes or how many check steps a run has: assets are
selected by group, runs are counted by the backfill's tag, work is counted in the event log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME as SENSOR_DAEMON_LOOP_SECONDS

from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.defs.assets import GROUP
from descriptor_pipeline.defs.partitions import all_partitions, register_id_ranges
from descriptor_pipeline.defs.resources import FreshnessSettings
from descriptor_pipeline.freshness import partitions_with_rows
from descriptor_pipeline.index_store import open_store
from descriptor_pipeline.refresh.queue import queue_depth
from descriptor_pipeline.refresh.requests import submit_request
from descriptor_pipeline.tables import refresh_requests
from descriptor_pipeline_tests.processes import stop, wait_for

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = Path(__file__).parent / "results"
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


def start(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """A dagster process in its own process group: stop() reaches its code servers and runs."""
    out = log.open("w")
    return subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True)


def fresh_pg_database(
    stack: contextlib.ExitStack, server_url: str, prefix: str, driver: str
) -> str:
    """A database of our own on `server_url`'s server, dropped (FORCE) when the stack unwinds."""
    server = sa.make_url(server_url).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    stack.callback(drop)
    return server.set(drivername=driver, database=name).render_as_string(hide_password=False)


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def max_overlap(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    depth = best = 0
    for _, step in edges:
        depth += step
        best = max(best, depth)
    return best


def work_done(instance: dg.DagsterInstance, run_ids: list[str]) -> dict[str, int]:
    """Materializations and check evaluations in the event log: shows both paths did the same."""
    materialized = dg.DagsterEventType.ASSET_MATERIALIZATION
    kinds = {materialized, dg.DagsterEventType.ASSET_CHECK_EVALUATION}
    out = {"materializations": 0, "check_evaluations": 0, "checks_failed": 0}
    for run_id in run_ids:
        for record in instance.get_records_for_run(run_id, of_type=kinds).records:
            event = record.event_log_entry.dagster_event
            if event is None or event.event_type == materialized:
                out["materializations"] += 1
            else:
                out["check_evaluations"] += 1
                out["checks_failed"] += not getattr(event.event_specific_data, "passed", True)
    return out


def index_rows(url: str) -> int:
    with open_store(url).engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM descriptor_index")).scalar_one())


def offsets(run: dict[str, Any] | None, since: float, prefix: str = "run") -> dict[str, Any]:
    """When a run was requested (created), started and ended, in seconds after `since`."""
    fields = {"requested": "creationTime", "started": "startTime", "ended": "endTime"}
    if run is None:
        return {}
    return {f"{prefix}_{k}_after": run[f] - since if run[f] else None for k, f in fields.items()}


# ---------------------------------------------------------------- 1. the UI backfill, in-process


def launched_backfill(gql: GraphQL, keys: list[str], timeout: float, logs: list[Path]) -> dict:
    """Assets > group > Materialize… > these partitions: one `launchPartitionBackfill`, timed from
    the mutation to the end of the backfill's last run (its runs carry `dagster/backfill`).

    The daemons report healthy with their first heartbeat, which the backfill daemon writes as
    its first iteration ends, so the launch lands just after one: the pickup measured is the
    worst case of its fixed 30 s loop (a long-running daemon makes a user wait 15 s on average).
    """
    nodes = gql(GROUP_ASSETS, g=gql.selector(groupName=GROUP))["assetNodes"]
    assets = [n["assetKey"] for n in nodes]
    launched_at = time.time()
    params = {"assetSelection": assets, "partitionNames": keys, "tags": []}
    result = gql(LAUNCH_BACKFILL, p=params)["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {result}")
    backfill_id = result["backfillId"]

    def finished() -> tuple[str, list[dict[str, Any]], float] | None:
        status = gql(BACKFILL, id=backfill_id)["partitionBackfillOrError"]["status"]
        runs = gql.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])
        if status in BACKFILL_DONE and all(r["status"] in FINISHED for r in runs):
            return status, runs, time.time()
        return None

    status, runs, seen_done = wait_for("the backfill to finish", finished, timeout, logs)
    spans = [(r["startTime"], r["endTime"]) for r in runs if r["startTime"] and r["endTime"]]
    if not spans:
        raise RuntimeError(f"backfill {backfill_id} ended {status} without a run that ran")
    statuses = [r["status"] for r in runs]
    failures = [
        {"run": r["runId"], "step": e.get("stepKey"), "error": (
            (e.get("error") or {}).get("message") or e.get("message") or "")[:1200]}
        for r in runs
        if r["status"] == "FAILURE"
        for e in gql(FAILURES, id=r["runId"])["logsForRun"].get("events", [])
        if e["__typename"] in ("ExecutionStepFailureEvent", "RunFailureEvent")
        or (e["__typename"] == "EngineEvent" and e.get("error"))
    ]  # fmt: skip
    return {
        "status": status,
        "assets": [a["path"][-1] for a in assets],
        "runs": len(runs),
        "run_statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "seconds": max(e for _, e in spans) - launched_at,
        "first_run_requested_after": min(r["creationTime"] for r in runs) - launched_at,
        "last_run_requested_after": max(r["creationTime"] for r in runs) - launched_at,
        "first_run_started_after": min(s for s, _ in spans) - launched_at,
        "status_terminal_seen_after": seen_done - launched_at,
        "run_seconds": spread([e - s for s, e in spans]),
        "max_concurrent_runs": max_overlap(spans),
        "run_ids": [r["runId"] for r in runs],
        "failures": failures,  # a failed run's own words (run_retries re-executes it)
    }


def in_process(home: Path, env: dict[str, str], keys: list[str], log: Path) -> dict[str, Any]:
    """The same partitions one after another through the code location's own asset job in this
    process (no daemon, no queue, no process per run). Taken from the loaded `defs` and limited
    to the group, it runs whatever checks the definitions attach (separate or check_specs)."""
    os.environ.update(env)  # the resources are EnvVars, resolved when a run starts
    from descriptor_pipeline.definitions import defs

    try:
        job = defs.resolve_implicit_global_asset_job_def()
    except dg.DagsterInvariantViolationError:  # several partitionings: the group's own job
        job = defs.resolve_job_def(JOB)
    selection = list(dg.AssetSelection.groups(GROUP).resolve(defs.resolve_asset_graph()))
    seconds, run_ids = [], []
    with (
        dg.DagsterInstance.from_config(str(home)) as instance,
        log.open("w") as out,
        contextlib.redirect_stderr(out),  # the console logger: as a launched run's, to a file
    ):
        started = time.perf_counter()
        for key in keys:
            t0 = time.perf_counter()
            result = job.execute_in_process(
                instance=instance,
                partition_key=key,
                asset_selection=selection,
                raise_on_error=False,
            )
            seconds.append(time.perf_counter() - t0)
            run_ids.append(result.run_id)
        total = time.perf_counter() - started
        failed = sum(not r.is_success for r in instance.get_runs(dg.RunsFilter(run_ids=run_ids)))
        return {
            "job": job.name,
            "seconds": total,
            "runs": len(run_ids),
            "failed_runs": failed,
            "run_seconds": spread(seconds),
            "work": work_done(instance, run_ids),
        }


# ---------------------------------------------------------------- 2 + 3. through the sensors


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
    gql: GraphQL, row: Row, repeats: int, logs: list[Path], seed: int = 11
) -> dict[str, list]:
    """2: rename with an `updated_at` bump, as the catalog's app does. 3: rename WITHOUT a bump
    (the incremental sensor cannot see it), then ask for the id's reindex both ways.

    Each edit or request waits a random 0-5 s after the deployment went quiet, so it lands at a
    random point of the sensor daemon's 5 s loop, as a user's would. Without it the bench's own
    rhythm (quiet is seen just after the previous path's run ended) put every try of a path at
    about the same point of the loop: 0.4-1.1 s to the request in one run, 4-5 s in another."""
    out: dict[str, list[dict[str, Any]]] = {}
    phase = random.Random(seed)
    for way in ("incremental_sensor", "reindex_resources_job", "refresh_request_row"):
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
            elif way == "refresh_request_row":
                submit_request(row.store, row.resource_type, [row.id], "bench.launched")
            seconds, run = row.wait_published(gql, tag, asked, 600, logs)
            entry = {"seconds": seconds, **offsets(run, asked)}
            if job_run:
                entry.update(offsets(gql.runs(runIds=[job_run])[0], asked, "reindex_job"))
            out.setdefault(way, []).append(entry)
    return out


# ---------------------------------------------------------------- setup, report, main


def measure(args: argparse.Namespace, stack: contextlib.ExitStack, result: dict) -> None:
    """Fills `result` as it goes, so a failure still leaves what was measured."""
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_launched_")))
    catalog_url = args.catalog_url or f"sqlite:///{tmp / 'catalog.sqlite'}"
    source = open_catalog(catalog_url, None)
    stack.callback(open_store.cache_clear)
    if args.catalog == "demo":
        from descriptor_pipeline.demo.seed import seed_catalog

        seed_catalog(source.engine, source.config)
    server = args.index_url or (catalog_url if source.engine.dialect.name != "sqlite" else None)
    paths = ("launched", "in_process")
    index = {  # a fresh index for each path, so both do the whole work
        p: fresh_pg_database(stack, server, f"bench_{p}_index", "postgresql+psycopg")
        if server
        else f"sqlite:///{tmp / f'index_{p}.sqlite'}"
        for p in paths
    }
    env = {
        "DESCRIPTOR_CATALOG_URL": catalog_url,
        "DESCRIPTOR_CATALOG_MAPPING": "",
        "DESCRIPTOR_DATA_DOCS_URL": "",
    }
    homes = {p: tmp / f"home_{p}" for p in paths}
    pg_instance = args.instance == "postgres"
    for p, home in homes.items():  # the in-process comparison always on SQLite, as specified
        home.mkdir()
        pg = pg_instance and p == "launched"
        # as scripts/env.sh writes it: shared settings, plus dagster-postgres storage
        parts = ["dagster.yaml", *(["dagster.postgres.storage.yaml"] if pg else [])]
        (home / "dagster.yaml").write_text("\n".join((REPO / f).read_text() for f in parts))
    if pg_instance:
        url = fresh_pg_database(stack, args.pg_url, "bench_launched_dagster", "postgresql+psycopg2")
        env["DAGSTER_POSTGRES_URL"] = os.environ["DAGSTER_POSTGRES_URL"] = url
    default_size = FreshnessSettings().id_range_size  # the growth sensor's
    range_size = args.range_size or (1000 if args.catalog == "demo" else default_size)
    for p, home in homes.items():
        with dg.DagsterInstance.from_config(str(home)) as instance:
            register_id_ranges(instance, source, range_size)
            ranges = all_partitions(instance)
            keys = [q.key for q in partitions_with_rows(source, open_store(index[p]), ranges)]
    catalog = (
        "demo (seeded into a temp SQLite file)" if args.catalog else source.engine.url.database
    )
    result["meta"].update(range_size=range_size, partitions=len(keys), catalog=catalog)

    # in-process first, on an idle machine: the catalog is the same for both
    inproc_env = {**env, "DESCRIPTOR_INDEX_URL": index["in_process"]}
    result["in_process"] = inproc = in_process(
        homes[paths[1]], inproc_env, keys, tmp / "in_process.log"
    )
    inproc["index_rows"] = index_rows(index["in_process"])

    workspace = tmp / "workspace.yaml"
    workspace.write_text(
        f"load_from:\n  - python_module:\n      module_name: descriptor_pipeline.definitions\n"
        f"      working_directory: {REPO}\n      location_name: {LOCATION}\n"
    )
    home = {"DAGSTER_HOME": str(homes["launched"]), "DESCRIPTOR_INDEX_URL": index["launched"]}
    sub_env = {**os.environ, **env, **home, "PYTHONUNBUFFERED": "1"}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # a free port, released for the webserver
    port, logs = sock.getsockname()[1], [tmp / "webserver.log", tmp / "daemon.log"]
    sock.close()
    gql = GraphQL(port)
    # as scripts/ui.sh does on an instance: the pools exist before two runs first claim them
    init = [str(BIN / "descriptor-pipeline"), "init-instance"]
    subprocess.run(init, env=sub_env, cwd=tmp, check=True, capture_output=True)
    webserver = [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)]
    stack.callback(stop, start([*webserver, "-w", str(workspace)], sub_env, tmp, logs[0]))
    daemon = [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)]
    stack.callback(stop, start(daemon, sub_env, tmp, logs[1]))
    up = time.time()
    wait_for("the webserver to load the code location", gql.location_loaded, 300, logs)
    wait_for("the daemons' heartbeats", gql.daemons_healthy, 300, logs)
    result["meta"]["services_ready_seconds"] = time.time() - up

    result["backfill"] = backfill = launched_backfill(gql, keys, args.timeout, logs)
    with dg.DagsterInstance.from_config(str(homes["launched"])) as instance:
        backfill["work"] = work_done(instance, backfill.pop("run_ids"))
    backfill["index_rows"] = index_rows(index["launched"])
    result["ratio_launched_to_in_process"] = backfill["seconds"] / inproc["seconds"]

    result["meta"]["sensor_first_tick_seconds"] = start_sensors(gql, logs)
    row = Row(source, open_store(index["launched"]), args.change_type)
    stack.callback(row.restore)
    result["meta"]["changed_row"] = f"{row.resource_type}:{row.id}"
    result["through_sensors"] = through_sensors(gql, row, args.repeats, logs)


def report(result: dict[str, Any]) -> str:
    """Every figure as a `section.name  value` line, attempts as a table (seconds wherever a name
    says seconds or after), in the order measured; the JSON file holds the same."""
    rows: list[tuple[str, str]] = []

    def text(value: Any) -> str:
        return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict) and not name.endswith("run_statuses"):
            for key, item in value.items():
                walk(f"{name}.{key}".strip("."), item)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            columns = list(value[0])  # one line per attempt, one column per figure
            rows.append((name, "  ".join(columns)))
            for n, item in enumerate(value, 1):
                rows.append(
                    (f"  #{n}", "  ".join(f"{text(item.get(c)):>{len(c)}}" for c in columns))
                )
        else:
            rows.append((name, text(value)))

    walk("", result)
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def code_version() -> str:
    """The commit measured, and whether the engine's files differ from it (others edit them)."""
    git = ["git", "--no-optional-locks", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "descriptor_pipeline"], capture_output=True
    )
    return f"{head.stdout.strip() or 'unknown'}{'+dirty' if dirty.stdout.strip() else ''}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    catalog = parser.add_mutually_exclusive_group(required=True)
    catalog.add_argument("--catalog", choices=["demo"], help="the demo, seeded into a temp file")
    catalog.add_argument(
        "--catalog-url",
        help="an existing catalog (e.g. from bench/generate_catalog.py); one row is renamed "
        "during the run and restored afterwards",
    )
    add("--index-url", help="a PostgreSQL URL: the two fresh index databases are created on its "
        "server (default: the catalog's server; SQLite files for a SQLite catalog)")  # fmt: skip
    add("--instance", choices=["sqlite", "postgres"], default="sqlite",
        help="the launched path's instance: SQLite or dagster-postgres storage")  # fmt: skip
    add("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="server for the instance's fresh database (--instance postgres)")  # fmt: skip
    add("--range-size", type=int,
        help="ids per id range (default 1000 demo, else freshness.id_range_size)")  # fmt: skip
    add("--change-type", default="artist", help="resource type of the row edited in 2. and 3.")
    add("--repeats", type=int, default=3, help="edits / reindex requests per way (2. and 3.)")
    add("--timeout", type=float, default=3600, help="seconds the backfill may take")
    args = parser.parse_args(argv)
    from dagster._daemon.controller import DEFAULT_DAEMON_INTERVAL_SECONDS

    from descriptor_pipeline.definitions import defs

    sensors = [s for s in defs.sensors or [] if s.name in SENSORS]
    intervals = {s.name: s.minimum_interval_seconds for s in sensors}
    result: dict[str, Any] = {
        "meta": {
            "argv": sys.argv[1:] if argv is None else argv,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_average_at_start": os.getloadavg(),  # others' work on the machine skews it all
            "code": code_version(),
            "dagster": dg.__version__,
            "cpus": os.cpu_count(),
            "instance": args.instance,
            "sensor_min_interval_seconds": intervals,
            "backfill_daemon_loop_seconds": DEFAULT_DAEMON_INTERVAL_SECONDS,
            "sensor_daemon_loop_seconds": SENSOR_DAEMON_LOOP_SECONDS,
            "sensor_paths_start_at": "a random point of the sensor loop (seeded)",
        }
    }
    label = "demo" if args.catalog else sa.make_url(args.catalog_url).database or "catalog"
    out = RESULTS / f"launched_{Path(label).stem}_{args.instance}.json"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop processes, drop DBs
    try:
        with contextlib.ExitStack() as stack:
            measure(args, stack, result)
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {str(exc)[:4000]}"
        raise
    finally:
        result["meta"]["load_average_at_end"] = os.getloadavg()
        RESULTS.mkdir(exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(report(result), f"\nwritten: {out}", sep="\n")


if __name__ == "__main__":
    main()
