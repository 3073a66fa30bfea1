"""Figure 1. of bench.launched: a partition backfill launched as the UI launches it (one
`launchPartitionBackfill`, then the daemon's queue and a process per run), and the same
partitions in this process one after another; the event log counts what each path did."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from pathlib import Path
from typing import Any

import dagster as dg

from bench.launched_graphql import (
    BACKFILL,
    BACKFILL_DONE,
    FAILURES,
    FINISHED,
    GROUP_ASSETS,
    JOB,
    LAUNCH_BACKFILL,
    GraphQL,
)
from descriptor_pipeline.defs.assets import GROUP
from descriptor_pipeline_tests.processes import wait_for


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
