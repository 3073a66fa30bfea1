"""One writer per partition and stage at a time, whichever run it belongs to.

The run queue keeps runs of one partition apart by their `dagster/partition` tag, but a UI
backfill packs several id ranges into one run (`BackfillPolicy.multi_run`), which carries range
tags instead, so it can overlap a sensor's run of one of its partitions. Each stage therefore
holds a lock on (stage, partition) from reading its input to its last write: on PostgreSQL a
transaction-level advisory lock on the index database (released when the transaction ends, or
when a killed run's connection drops); on SQLite an OS file lock beside the database file (one
SQLite file is one machine; the kernel drops the lock when the process dies). A second run waits
at most the store's `lock_wait` (`IndexStoreResource.lock_wait_seconds`, `WAIT_SECONDS` by
default), then fails with `PartitionBusy`, which is transient: the step's RetryPolicy tries
again. The upserts' `not_older` guard stays as the second line of defence.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

import sqlalchemy as sa

from descriptor_pipeline.id_ranges import DescriptorPartition

# the default of IndexStoreResource.lock_wait_seconds, and of a store opened outside a run
WAIT_SECONDS = 600.0  # a partition's stage takes seconds; a longer wait means a stuck writer
POLL_SECONDS = 0.1  # the SQLite file lock is polled (flock has no timeout)
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired

P = ParamSpec("P")
R = TypeVar("R")


class PartitionBusy(TimeoutError):
    """Another run held the partition's stage longer than the wait (transient: retried)."""

    def __init__(self, stage: str, partition: DescriptorPartition, wait: float) -> None:
        super().__init__(
            f"{stage} of partition {partition.key} is being written by another run and was "
            f"not released within {wait:g} s; the step retries. If it never frees, look for a "
            "stuck run of that partition (UI: Runs, filter by partition) and terminate it."
        )


def lock_key(stage: str, partition: DescriptorPartition) -> int:
    """A signed 64-bit key, the same in every process (PostgreSQL's advisory lock space)."""
    digest = hashlib.blake2b(f"descriptor:{stage}:{partition.key}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


@contextmanager
def held(
    engine: sa.Engine, partition: DescriptorPartition, stage: str, wait: float = WAIT_SECONDS
) -> Iterator[None]:
    """Hold the (stage, partition) lock of the database `engine` writes to for the block."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, partition, stage, wait):
            yield
        return
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        with _file_lock(Path(database), partition, stage, wait):
            yield
        return
    yield  # an in-memory database lives in one process: nothing to serialize against


@contextmanager
def held_all(
    engine: sa.Engine, partitions: list[DescriptorPartition], stage: str, wait: float = WAIT_SECONDS
) -> Iterator[None]:
    """Hold the stage's lock on every partition, taken in key order (no two holders wait on
    each other): a check forgetting hashes must not land inside another run's whole pass,
    which would then record its token over rows left to redo."""
    with ExitStack() as stack:
        for partition in sorted(set(partitions), key=lambda p: p.key):
            stack.enter_context(held(engine, partition, stage, wait))
        yield


def under_all(
    engine: sa.Engine,
    partitions: list[DescriptorPartition],
    stage: str,
    wait: float,
    action: Callable[[], None],
) -> bool:
    """Run `action` holding the stage's lock on every partition (`held_all`). If another
    writer keeps one past the wait, run it anyway and return False: for a check forgetting
    rejected rows, late beats never (a retry would find the stage current and lose them)."""
    try:
        with held_all(engine, partitions, stage, wait):
            action()
        return True
    except PartitionBusy:
        action()
        return False


@contextmanager
def _advisory_lock(
    engine: sa.Engine, partition: DescriptorPartition, stage: str, wait: float
) -> Iterator[None]:
    with engine.connect() as conn, conn.begin():
        # 0 would mean no timeout at all: at least 1 ms
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{max(1, int(wait * 1000))}ms'")
        try:
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(stage, partition)}
            )
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise PartitionBusy(stage, partition, wait) from exc
            raise
        yield  # the transaction stays open, idle, until the stage is done: then the lock goes


@contextmanager
def _file_lock(
    database: Path, partition: DescriptorPartition, stage: str, wait: float
) -> Iterator[None]:
    folder = database.with_name(database.name + ".locks")
    folder.mkdir(exist_ok=True)
    name = f"{stage}-{partition.id_range.key}-{partition.resource_type}.lock"
    with (folder / name).open("a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PartitionBusy(stage, partition, wait) from None
                time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def serialized(stage: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a stage function taking `store` and `partition`: it runs under their lock,
    waiting for it at most the store's `lock_wait`."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(*args, **kwargs).arguments
            store = bound["store"]
            with held(store.engine, bound["partition"], stage, store.lock_wait):
                return function(*args, **kwargs)

        return run

    return decorate
