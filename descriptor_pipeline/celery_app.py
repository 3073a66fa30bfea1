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
  A worker also drops a task of a run that is already over (a late redelivery), and a step
  whose run ends while it runs (failed, or terminated from the UI) is interrupted within about
  a second (`RunWatch`), so a step of a run that gave up does not publish unless it commits in
  that second (a resume then finds its rows in place and writes nothing).
- A lost broker: the run process's next publish or result poll fails within seconds and fails
  the run, which frees the pool slots its steps held; a worker stops the step it was running
  (`worker_cancel_long_running_tasks_on_connection_loss`), and `RunWatch` stops one Celery's
  cancel misses (received, not yet started when the connection went). Re-execution from failure
  completes the run (test_celery.py, test_a_broker_lost_mid_backfill_...).
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import celery
import dagster as dg
from celery import Celery
from celery.signals import worker_process_init
from celery.utils.log import get_task_logger
from dagster._core.execution.retries import RetryMode
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import pack_value, unpack_value
from dagster_celery.config import TASK_EXECUTE_PLAN_NAME
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor
from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG
from dagster_celery.tasks import create_task
from kombu import Queue

from descriptor_pipeline.celery_routing import DEFAULT_QUEUE, QUEUES

logger = get_task_logger(__name__)

DEFAULT_BROKER = "pyamqp://guest:guest@127.0.0.1:5672//"
CODE_VERSION_KWARG = "descriptor_code_version"
RUN_WATCH_SECONDS = 1.0  # how often a running step reads its run's status
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
    # A worker that loses the broker can no longer acknowledge its running step (the broker
    # hands the message out again when it is back), and the run process has failed the run:
    # Celery's setting (default True from Celery 6) stops the step instead of letting it
    # write on unseen, so the resume is the only writer of the partition.
    "worker_cancel_long_running_tasks_on_connection_loss": True,
}


class CodeVersionMismatch(RuntimeError):
    """A worker was handed a step of code it does not run."""


_IN_POOL_PROCESS = False  # set in prefork pool processes, where a step may end its own process


@worker_process_init.connect
def _mark_pool_process(**_: Any) -> None:
    global _IN_POOL_PROCESS
    _IN_POOL_PROCESS = True


def run_over(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """Why a step of this run must not run or publish any more, or None while it may."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return "deleted"
    if run.is_finished or run.status == dg.DagsterRunStatus.CANCELING:
        return run.status.value
    return None


class RunWatch:
    """Stops the step when its run ends while the step runs.

    Two ways a step outlived its run, both seen in the tests: Celery's cancel on a lost broker
    signals only steps the pool has reported started, so a step received just before the cut
    ran on and published into the failed run; and dagster-celery's terminate (the UI's
    Terminate) revokes tasks without stopping a running one, so the run waited for it. The
    watch reads the run's status every `interval` seconds and, once the run is over or being
    cancelled, sends its pool process SIGTERM, as Celery's cancel does, and again every
    interval until the step returns. While the step's code runs, Dagster turns the signal into
    an interrupt (DagsterExecutionInterruptedError): the step fails and its transaction rolls
    back; the server ends the query once it sees the client gone (`store_engine`'s
    `client_connection_check_interval`). Before the step's code starts, a pool process that
    already ran a step ignores SIGTERM (Dagster leaves it mapped to SIGINT's SIG_IGN), hence
    the repeats; a fresh one exits, and the broker redelivers the task, which is dropped.
    Outside a prefork pool process (`-P solo`, threads) the signal would shut the worker down,
    so the watch only logs there. Each check is one read of the run storage (dagster-postgres
    opens a connection per read): one per running step per second.
    """

    def __init__(
        self, instance: dg.DagsterInstance, run_id: str, step: str, task_id: str, interval: float
    ) -> None:
        self._instance, self._run_id, self._interval = instance, run_id, interval
        self._step = step
        # Celery's log format reads the task from the thread, which the watch's thread is not
        self._task = {"task_name": TASK_EXECUTE_PLAN_NAME, "task_id": task_id}
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="descriptor-run-watch", daemon=True
        )

    def __enter__(self) -> RunWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        # a read hung on the run storage must not hold the finished task; the thread is a
        # daemon and, `_done` being set, signals nothing once its read returns
        self._thread.join(timeout=self._interval + 5)

    def _watch(self) -> None:
        over = None
        while not self._done.wait(self._interval):
            if over is None:
                try:
                    over = run_over(self._instance, self._run_id)
                except Exception as exc:  # an unreachable instance DB: the step's writes fail too
                    logger.warning(
                        "run watch of %s could not read its run: %r",
                        self._step,
                        exc,
                        extra=self._task,
                    )
                    continue
                if over is None:
                    continue
                logger.warning(
                    "stopping step %s of run %s: the run is %s",
                    self._step,
                    self._run_id,
                    over,
                    extra=self._task,
                )
            if self._done.is_set() or not _IN_POOL_PROCESS:
                return
            os.kill(os.getpid(), signal.SIGTERM)


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
        step_args = unpack_value(dict(kwargs["execute_step_args_packed"]), as_type=ExecuteStepArgs)
        instance = dg.DagsterInstance.from_ref(step_args.instance_ref)  # type: ignore[arg-type]
        try:
            over = run_over(instance, step_args.run_id)
            if over is not None:
                # a redelivery after the run gave up (a dead worker, a lost broker): running it
                # would publish a step of a finished run; the resume of that run re-runs it
                logger.warning("dropped task %s: its run is over (%s)", self.request.id, over)
                return []
            step = ",".join(step_args.step_keys_to_execute or [])
            with RunWatch(instance, step_args.run_id, step, self.request.id, RUN_WATCH_SECONDS):
                return super().__call__(*args, **kwargs)
        finally:
            instance.dispose()


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

        try:
            yield from core_celery_execution_loop(
                plan_context, execution_plan, step_execution_fn=submit
            )
        except Exception:
            yield self._free_pool_slots(plan_context)
            raise

    @staticmethod
    def _free_pool_slots(plan_context: Any) -> dg.DagsterEvent:
        """Give back the pool slots of this run's steps still out on workers when the loop
        fails (a lost broker): Dagster frees a claimed slot only on the step's end event,
        which the failed run will not receive, so other runs waited for them (observed)."""
        storage = plan_context.instance.event_log_storage
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(plan_context.dagster_run.run_id)
        return dg.DagsterEvent.engine_event(
            plan_context, "Celery execution failed: the pool slots of this run's steps are freed"
        )


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
