"""How a run executes its steps, chosen by the deployment's environment when the code location
loads (discovered with the rest of `defs/`).

The default is `in_process_executor`: a partition's three steps share the run's process, one
import of pandas and Great Expectations and one connection pool, instead of a process per step
(8 per run before the checks moved into the assets). An executor is part of a Dagster
definition (the run process reads it from the loaded code), so the choice is made where the code
loads: `DESCRIPTOR_EXECUTOR` unset or `in_process` keeps the single-machine default; `celery`
sends every step to the Celery workers on `DESCRIPTOR_CELERY_BROKER` (docs/rollout.md). The
webserver, the daemon, the run processes and the workers get the same environment, so they all
load the same definitions; no code edit switches modes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

EXECUTORS = ("in_process", "celery")


def selected_executor(env: Mapping[str, str] = os.environ) -> dg.ExecutorDefinition:
    """in_process_executor by default; the Celery executor with DESCRIPTOR_EXECUTOR=celery."""
    choice = env.get("DESCRIPTOR_EXECUTOR", "") or "in_process"
    if choice == "in_process":
        return dg.in_process_executor
    if choice != "celery":
        raise ValueError(f"DESCRIPTOR_EXECUTOR must be one of {EXECUTORS}, got {choice!r}")
    from descriptor_pipeline.celery_app import backend_url, broker_url, descriptor_celery_executor

    return descriptor_celery_executor.configured(
        {"broker": broker_url(env), "backend": backend_url(env)}, name="celery"
    )


defs = dg.Definitions(executor=selected_executor())
