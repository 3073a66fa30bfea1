"""The Celery side of the Celery deployment mode: the app the workers run and the executor.

Workers start with `-A descriptor_pipeline.celery_app` (scripts/celery_workers.sh). Three things
differ from stock dagster-celery 0.29.27, each for a reason:

- Queues: stock dagster-celery declares only its `dagster` queue with priorities; a step sent to
  another queue lands in a queue declared without `x-max-priority`, where priorities do nothing.
  Here `interactive` and `bulk` are both declared with priorities 0..10.
- Routing: stock dagster-celery reads `dagster-celery/queue` from *op* tags only. This executor
  also reads it from the *run* tags, which the sensors, schedules and jobs set
  (`celery_routing`), and sends untagged runs (UI backfills) to `bulk`.
- Delivery: a task is acknowledged after it ran (`task_acks_late`), so when a worker dies the
  broker hands its step to another worker; every task carries the code version of the run
  process, and a worker with other code refuses it (`CodeVersionMismatch`) instead of running it.
  A worker also drops a task of a run that already finished (a late redelivery), so a step is
  never published again after the run gave up or a resume re-ran it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import celery
import dagster as dg
from celery import Celery
from dagster._core.execution.retries import RetryMode
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import pack_value
from dagster_celery.config import TASK_EXECUTE_PLAN_NAME
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor
from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG
from dagster_celery.tasks import create_task
from kombu import Queue

from descriptor_pipeline.celery_routing import DEFAULT_QUEUE, QUEUES

DEFAULT_BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
CODE_VERSION_KWARG = "descriptor_code_version"
_PACKAGE = Path(__file__).resolve().parent


def code_version() -> str:
    """A digest of this package's source and the dagster version, or DESCRIPTOR_CODE_VERSION
    (a release id) when the deployment sets one: run process and worker must agree."""
    pinned = os.environ.get("DESCRIPTOR_CODE_VERSION")
    if pinned:
        return pinned
    digest = hashlib.sha256(dg.__version__.encode())
    for path in sorted(_PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(_PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CODE_VERSION = code_version()


def broker_url(env: Mapping[str, str] = os.environ) -> str:
    return env.get("DESCRIPTOR_CELERY_BROKER") or DEFAULT_BROKER


def backend_url(env: Mapping[str, str] = os.environ) -> str:
    return env.get("DESCRIPTOR_CELERY_BACKEND") or "rpc://"


APP_CONFIG: dict[str, Any] = {
    "task_queues": [
        Queue(q, routing_key=f"{q}.#", queue_arguments={"x-max-priority": 10}) for q in QUEUES
    ],
    "task_default_queue": DEFAULT_QUEUE,
    "task_queue_max_priority": 10,
    "task_default_priority": 5,
    # one reserved task per worker process, so priorities decide what runs next
    "worker_prefetch_multiplier": 1,
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "broker_connection_retry_on_startup": True,
    # a publish to a broker that is gone fails in about 2 s instead of hanging the run
    "broker_transport_options": {
        "max_retries": 3,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    },
    "broker_connection_timeout": 4,
}


class CodeVersionMismatch(RuntimeError):
    """A worker was handed a step of code it does not run."""


class DescriptorTask(celery.Task):
    """dagster-celery's step task, guarded by the code version and the run's status."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        wanted = kwargs.pop(CODE_VERSION_KWARG, None)
        if wanted != CODE_VERSION:
            raise CodeVersionMismatch(
                f"worker {self.request.hostname} runs descriptor_pipeline code version "
                f"{CODE_VERSION}, the run needs {wanted}: deploy the same code to the worker "
                "or stop it (docs/rollout.md, 'Past one machine: Celery workers')"
            )
        if self._run_finished(kwargs["execute_step_args_packed"]):
            return []  # a redelivery after the run gave up: running it would publish again
        return super().__call__(*args, **kwargs)

    @staticmethod
    def _run_finished(packed: Mapping[str, Any]) -> bool:
        from dagster._serdes import unpack_value

        step_args = unpack_value(dict(packed), as_type=ExecuteStepArgs)
        instance = dg.DagsterInstance.from_ref(step_args.instance_ref)  # type: ignore[arg-type]
        run = instance.get_run_by_id(step_args.run_id)
        return run is None or run.is_finished


def make_descriptor_app(broker: str | None = None, backend: str | None = None) -> Celery:
    """The Celery app of workers and run processes: both must declare the same queues."""
    app = Celery("dagster", broker=broker or broker_url(), backend=backend or backend_url())
    app.conf.update(APP_CONFIG)
    create_task(app, base=DescriptorTask, typing=False)  # the extra kwarg: the code version
    return app


app = make_descriptor_app()  # `celery -A descriptor_pipeline.celery_app` finds this
execute_plan = app.tasks[TASK_EXECUTE_PLAN_NAME]


class DescriptorCeleryExecutor(CeleryExecutor):
    """dagster-celery's execution loop with the run's queue tag and the code version."""

    def execute(self, plan_context: Any, execution_plan: Any) -> Any:
        own_app = make_descriptor_app(self.broker, self.backend)
        # the loop sends a step without an op-level queue tag to the app's default queue and
        # logs it: make that default the run's queue (one executor object per run process)
        run_tags = plan_context.dagster_run.tags
        self.config_source.task_default_queue = run_tags.get(
            DAGSTER_CELERY_QUEUE_TAG, DEFAULT_QUEUE
        )

        def submit(
            _app: Any, context: Any, step: Any, queue: str, priority: int, known_state: Any
        ) -> Any:
            step_args = ExecuteStepArgs(
                job_origin=context.reconstructable_job.get_python_origin(),
                run_id=context.dagster_run.run_id,
                step_keys_to_execute=[step.key],
                instance_ref=context.instance.get_ref(),
                retry_mode=context.executor.retries.for_inner_plan(),
                known_state=known_state,
                print_serialized_events=True,
            )
            signature = own_app.tasks[TASK_EXECUTE_PLAN_NAME].si(
                execute_step_args_packed=pack_value(step_args),
                executable_dict=context.reconstructable_job.to_dict(),
                **{CODE_VERSION_KWARG: CODE_VERSION},
            )
            return signature.apply_async(
                priority=priority, queue=queue, routing_key=f"{queue}.execute_plan"
            )

        return core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=submit)


@dg.executor(
    name="descriptor_celery",
    config_schema=CELERY_CONFIG,
    requirements=dg.multiple_process_executor_requirements(),
)
def descriptor_celery_executor(init_context: dg.InitExecutorContext) -> DescriptorCeleryExecutor:
    """celery_executor with this project's queues, routing and guards (module docstring)."""
    config = init_context.executor_config
    return DescriptorCeleryExecutor(
        broker=config.get("broker"),
        backend=config.get("backend"),
        config_source=config.get("config_source"),
        include=config.get("include"),
        retries=RetryMode.from_config(config["retries"]),  # type: ignore[arg-type]
    )
