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
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._daemon.sensor import MIN_INTERVAL_LOOP_TIME as SENSOR_DAEMON_LOOP_SECONDS

from bench.launched_backfill import in_process, launched_backfill, work_done
from bench.launched_graphql import LOCATION, SENSORS, GraphQL
from bench.launched_sensors import Row, start_sensors, through_sensors
from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.defs.partitions import (
    ID_RANGE_PARTITIONS_NAME,
    all_partitions,
    register_id_ranges,
)
from descriptor_pipeline.defs.resources import FreshnessSettings
from descriptor_pipeline.freshness import partitions_with_rows
from descriptor_pipeline.id_ranges import DescriptorPartition, RangeLookup
from descriptor_pipeline.index_store import open_store
from descriptor_pipeline_tests.processes import stop, wait_for

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = Path(__file__).parent / "results"


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


def index_rows(url: str) -> int:
    with open_store(url).engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM descriptor_index")).scalar_one())


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
    with dg.DagsterInstance.from_config(str(homes["launched"])) as instance:
        id_range = RangeLookup(instance.get_dynamic_partitions(ID_RANGE_PARTITIONS_NAME))
    found = id_range.range_of(row.id)
    assert found is not None, f"no registered id range holds {row.id}"
    partition_key = DescriptorPartition(row.resource_type, found).key
    result["through_sensors"] = through_sensors(gql, row, partition_key, args.repeats, logs)


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
