"""A real Celery deployment for tests: its own RabbitMQ vhost, PostgreSQL databases for the
Dagster instance and for the catalog and index, worker processes started by
scripts/celery_workers.sh, and runs launched by `dagster job execute` as separate processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.refresh.tags import TAG_MODE
from descriptor_pipeline_tests.processes import stop, wait_for

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RABBIT = ("127.0.0.1", 5672)
IN_CI = os.environ.get("CI", "").lower() == "true"
INDEX_COLUMNS = "resource_type, resource_id, document_key, name, display_text, search_name, " \
    "search_aliases, search_facets, search_description, document, hidden, content_hash"


def rabbit_or_skip() -> None:
    """RabbitMQ and rabbitmqctl (for a vhost per test run), or a loud skip (a failure in CI)."""
    problem = None
    try:
        socket.create_connection(RABBIT, timeout=3).close()
    except OSError as exc:
        problem = f"RabbitMQ not reachable at {RABBIT[0]}:{RABBIT[1]}: {exc}"
    if (
        problem is None
        and subprocess.run(
            ["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, timeout=30
        ).returncode
    ):
        problem = "rabbitmqctl cannot reach the broker (it creates a vhost per test run)"
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true requires RabbitMQ. {problem}")
        pytest.skip(f"!!! CELERY TESTS SKIPPED: {problem}")


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@dataclass
class Cluster:
    home: Path
    env: dict[str, str]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    runs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def start_worker(
        self, queue: str, concurrency: int = 1, extra_env: dict[str, str] | None = None
    ) -> str:
        """A worker as an operator starts it (scripts/celery_workers.sh run); waits until ready."""
        name = f"{queue}-{len(self.workers) + 1}-{uuid.uuid4().hex[:4]}"
        log = self.log(name)
        self.workers[name] = subprocess.Popen(
            ["bash", str(REPO / "scripts/celery_workers.sh"), "run", queue, name, str(concurrency)],
            cwd=REPO,
            env={**self.env, **(extra_env or {})},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = self.workers[name]

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"worker {name} exited: {log.read_text(errors='replace')[-3000:]}")
            return " ready." in log.read_text(errors="replace")

        wait_for(f"worker {name}", ready, 90, [log])
        return name

    def launch(
        self,
        name: str,
        tags: dict[str, str],
        job: str = "refresh_descriptors",
        config: dict[str, object] | None = None,
    ) -> subprocess.Popen[bytes]:
        """A run process (`dagster job execute`) whose steps go to the Celery workers."""
        args = [
            str(BIN / "dagster"),
            "job",
            "execute",
            "-m",
            "descriptor_pipeline.definitions",
            "-j",
            job,
            "--tags",
            json.dumps(tags),
        ]
        if config is not None:
            path = self.home / f"{name}.json"
            path.write_text(json.dumps(config))
            args += ["-c", str(path)]
        return self._run_process(name, args)

    def script(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        """scripts/celery_workers.sh with the deployment's environment, as an operator runs it."""
        return subprocess.run(
            ["bash", str(REPO / "scripts/celery_workers.sh"), *args],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout,
        )

    @property
    def script_pidfiles(self) -> dict[str, int]:
        """The workers `celery_workers.sh start` left running: name -> process group."""
        rundir = Path(self.env["DAGSTER_HOME"]) / "celery"
        return {p.stem: int(p.read_text()) for p in sorted(rundir.glob("*.pid"))}

    @property
    def vhost(self) -> str:
        return self.env["DESCRIPTOR_CELERY_BROKER"].rsplit("/", 1)[1]

    def resume(self, name: str, parent_run_id: str) -> subprocess.Popen[bytes]:
        """Re-execute a failed run from failure, in a process of its own whose steps go to the
        workers: what the UI's *Re-execute from failure* and `run_retries` do (same strategy,
        the parent's tags and config)."""
        args = [sys.executable, "-m", "descriptor_pipeline_tests.celery_cluster", "resume",
                parent_run_id]  # fmt: skip
        return self._run_process(name, args)

    def _run_process(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        """A run process in its own session (close() stops it), logging to `name`'s log."""
        proc = subprocess.Popen(
            args,
            cwd=REPO,
            env=self.env,
            stdout=self.log(name).open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.runs.append(proc)
        return proc

    @contextlib.contextmanager
    def catalog_table_locked(self, resource_type: str) -> Iterator[Callable[[], int]]:
        """Hold a resource table of the catalog exclusively: a step that reads it blocks
        mid-step until the block ends (a step in flight, on a worker). Yields a count of the
        sessions waiting for the lock (a stopped step's session is gone)."""
        data_url = self.env["DESCRIPTOR_CATALOG_URL"]
        table = open_catalog(data_url, None).resource_table(resource_type).name
        locker = sa.create_engine(data_url)
        conn = locker.connect()
        tx = conn.begin()
        conn.execute(sa.text(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE'))
        holder = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()

        def waiting() -> int:
            with locker.connect() as probe:
                return probe.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE :holder = ANY(pg_blocking_pids(pid))"
                    ),
                    {"holder": holder},
                ).scalar_one()

        try:
            yield waiting
        finally:
            tx.rollback()
            conn.close()
            locker.dispose()

    def close(self) -> None:
        for proc in [*self.runs, *self.workers.values()]:
            stop(proc, signal.SIGKILL if proc in self.runs else signal.SIGTERM)
        for group in self.script_pidfiles.values():  # workers a test's `start` left behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)


def cluster_env(home: Path, vhost: str, instance_url: str, data_url: str) -> dict[str, str]:
    """The environment every process of the deployment shares (docs/rollout.md)."""
    return {
        **os.environ,
        "VENV": str(BIN.parent),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "DESCRIPTOR_INSTANCE": "postgres",
        "DAGSTER_POSTGRES_URL": instance_url.replace("+psycopg", "+psycopg2"),
        "DESCRIPTOR_CATALOG_URL": data_url,
        "DESCRIPTOR_INDEX_URL": data_url,
        "DESCRIPTOR_CATALOG_MAPPING": "",
        "DESCRIPTOR_DATA_DOCS_URL": "",
        "DESCRIPTOR_PIPELINE_DATA": str(home / "data"),
        "DESCRIPTOR_EXECUTOR": "celery",
        "DESCRIPTOR_CELERY_BROKER": f"pyamqp://guest:guest@127.0.0.1:5672/{vhost}",
    }


def index_rows(url: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            f"SELECT {INDEX_COLUMNS} FROM descriptor_index ORDER BY resource_type, resource_id"
        )).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def materializations(
    instance: dg.DagsterInstance, asset: str
) -> dict[str, list[dg.EventLogRecord]]:
    """The materializations of `asset` by partition, oldest first."""
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records
    out: dict[str, list[dg.EventLogRecord]] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        out.setdefault(record.partition_key or "", []).append(record)
    return out


def rows_written(record: dg.EventLogRecord) -> int:
    materialization = record.asset_materialization
    assert materialization is not None
    return int(materialization.metadata["rows_written"].value)  # type: ignore[arg-type]


def finish(cluster: Cluster, name: str, proc: object, timeout: float = 150) -> None:
    wait_for(f"run {name}", lambda: proc.poll() is not None, timeout,  # type: ignore[attr-defined]
             [cluster.log(name), *(cluster.log(w) for w in cluster.workers)])


def runs_by_mode(instance: dg.DagsterInstance, mode: str) -> list[dg.RunRecord]:
    return list(instance.get_run_records(filters=dg.RunsFilter(tags={TAG_MODE: mode})))


def executed_tasks(cluster: Cluster, worker: str) -> int:
    text = cluster.log(worker).read_text(errors="replace")
    return len(re.findall(r"Task execute_plan\[[^\]]+\] succeeded", text))


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def code_location_job(name: str) -> dg.JobDefinition:
    """The code location's job `name`: how the run process and the workers rebuild the job a
    resume runs (`dg.build_reconstructable_job` names this function)."""
    from descriptor_pipeline.definitions import defs

    return defs.resolve_job_def(name)


def resume_from_failure(parent_run_id: str) -> bool:
    """Re-execute `parent_run_id` from failure on the instance in DAGSTER_HOME."""
    # Private, for want of a public equivalent: which steps a resume would run. The public
    # `ReexecutionOptions.from_failure` is only a marker that `execute_job` resolves from the
    # parent's execution-plan snapshot and STEP_* events, which no public DagsterInstance
    # method reads; given nothing to run, execute_job makes a failed run ("Cannot perform
    # reexecution with in-memory io managers"), the error a real misconfiguration gives too.
    from dagster._core.execution.plan.state import KnownExecutionState

    with dg.DagsterInstance.get() as instance:
        parent = instance.get_run_by_id(parent_run_id)
        assert parent is not None, parent_run_id
        steps, _ = KnownExecutionState.build_resume_retry_reexecution(instance, parent)
        if not steps:
            # every step finished on a worker after the run process had failed: Dagster
            # refuses an empty re-execution ("in-memory io managers"), and there is nothing to do
            print(f"nothing to resume: every step of {parent_run_id} succeeded")
            return True
        job = dg.build_reconstructable_job(
            "descriptor_pipeline_tests.celery_cluster",  # not __main__: the workers import it
            "code_location_job",
            (parent.job_name,),
            reconstructor_working_directory=str(REPO),
        )
        tags = {k: v for k, v in parent.tags.items()
                if k not in ("dagster/parent_run_id", "dagster/root_run_id")}
        result = dg.execute_job(
            job,
            instance,
            run_config=parent.run_config,
            tags=tags,
            reexecution_options=dg.ReexecutionOptions.from_failure(parent_run_id, instance),
        )
        print(f"resumed {parent_run_id} as {result.run_id}: success={result.success}")
        return result.success


if __name__ == "__main__":
    if sys.argv[1:2] == ["resume"]:
        sys.exit(0 if resume_from_failure(sys.argv[2]) else 1)
