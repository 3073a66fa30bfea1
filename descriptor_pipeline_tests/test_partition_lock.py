"""Writers of one partition take turns, whichever run they belong to (a packed backfill run and a
sensor's single-partition run carry different run tags, so the run queue cannot keep them
apart); a wait is bounded and ends in a transient error; a killed holder frees the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from descriptor_pipeline.catalog import CatalogChunk, CatalogSource
from descriptor_pipeline.defs.checks import _forget_if_blocked
from descriptor_pipeline.defs.resources import IndexStoreResource
from descriptor_pipeline.faults import is_transient
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.partition_lock import PartitionBusy, held, under_all
from descriptor_pipeline.raw_stage import extract_raw
from descriptor_pipeline.tables import normalized_descriptors, raw_descriptors
from descriptor_pipeline_tests.conftest import Deployment, metadata_of

ARTISTS_0 = DescriptorPartition("artist", IdRange(0, 999))


def _rename(dep: Deployment, name: str, at: datetime) -> None:
    table = dep.catalog.resource_table("artist")
    with dep.catalog.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == 5).values(name=name, updated_at=at))


def _stored(dep: Deployment, table: sa.Table, column: str) -> Any:
    """One column of artist 5's row in a stage table."""
    with dep.store.engine.connect() as conn:
        return conn.execute(
            sa.select(table.c[column]).where(
                table.c.resource_type == "artist", table.c.resource_id == 5
            )
        ).scalar_one()


class PausedSource(CatalogSource):
    """Reads the range, says so, then waits for `go` before handing the rows to the stage:
    run A has read version 1 and not written it yet."""

    def __init__(self, source: CatalogSource) -> None:
        super().__init__(source.engine, source.config)
        self.read = threading.Event()
        self.go = threading.Event()

    def fingerprint(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def iter_chunks(self, *args: Any, **kwargs: Any) -> Iterator[CatalogChunk]:
        chunks = list(super().iter_chunks(*args, **kwargs))
        self.read.set()
        assert self.go.wait(120)
        yield from chunks


def test_a_second_run_of_a_partition_waits_for_the_first_and_the_newer_version_wins(
    backend_deployment: Deployment,
) -> None:
    """Run A reads version 1 and stalls inside its raw stage; the catalog moves to version 2;
    run B (the real assets) starts. B must wait for A's raw stage instead of writing first, so
    A's write lands (and is counted), and B then reads and publishes version 2."""
    dep = backend_deployment
    dep.register()
    assert dep.materialize(ARTISTS_0).success
    _rename(dep, "Version One", datetime(2026, 11, 3, tzinfo=UTC))
    paused = PausedSource(dep.catalog)
    reports: list[Any] = []
    run_a = threading.Thread(
        target=lambda: reports.append(extract_raw(paused, dep.store, ARTISTS_0, dep.chunk_size))
    )
    run_a.start()
    results: list[Any] = []
    run_b = threading.Thread(target=lambda: results.append(dep.materialize(ARTISTS_0)))
    try:
        assert paused.read.wait(60)
        _rename(dep, "Version Two", datetime(2026, 11, 4, tzinfo=UTC))
        run_b.start()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:  # B is running, and must not have written
            assert _stored(dep, raw_descriptors, "name") not in ("Version One", "Version Two")
            time.sleep(0.2)
        assert run_b.is_alive()
    finally:
        paused.go.set()
        run_a.join(120)
    run_b.join(300)
    (report,) = reports
    assert report.counts.updated == 1 and report.counts.written == 1  # A's write landed first
    (result,) = results
    assert result.success
    assert metadata_of(result, "raw_descriptors")["rows_updated"] == 1  # version 1 -> 2
    assert _stored(dep, raw_descriptors, "name") == "Version Two"
    document = dep.store.document("artist", 5)
    assert document is not None and document["name"] == "Version Two"


def test_a_wait_is_bounded_and_ends_in_a_transient_error(
    backend_deployment: Deployment,
) -> None:
    engine = backend_deployment.store.engine
    with held(engine, ARTISTS_0, "raw"):
        started = time.monotonic()
        with pytest.raises(PartitionBusy) as busy, held(engine, ARTISTS_0, "raw", wait=0.5):
            pass
        assert 0.4 < time.monotonic() - started < 10
        assert is_transient(busy.value) and ARTISTS_0.key in str(busy.value)
        with held(engine, ARTISTS_0, "normalize", wait=0.5):  # another stage is free
            pass
    with held(engine, ARTISTS_0, "raw", wait=0.5):  # released
        pass


def test_a_stage_waits_as_long_as_the_index_store_resource_says(
    backend_deployment: Deployment,
) -> None:
    """`IndexStoreResource.lock_wait_seconds` reaches a stage's lock through the store it
    hands out (the default, 600 s, would hold this test for ten minutes)."""
    dep = backend_deployment
    store = IndexStoreResource(url=dep.index_url, lock_wait_seconds=0.5).store()
    assert store.engine is dep.store.engine  # still one engine per URL and process
    with held(dep.store.engine, ARTISTS_0, "raw"):
        started = time.monotonic()
        with pytest.raises(PartitionBusy):
            extract_raw(dep.catalog, store, ARTISTS_0, dep.chunk_size)
        assert 0.4 < time.monotonic() - started < 10


def test_a_killed_holder_frees_the_lock(backend_deployment: Deployment) -> None:
    """kill -9 of a run holding the lock: PostgreSQL ends its session, the kernel drops the
    file lock, and the next writer gets it within its wait."""
    dep = backend_deployment
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from descriptor_pipeline.index_store import open_store\n"
            "from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange\n"
            "from descriptor_pipeline.partition_lock import held\n"
            "with held(open_store(sys.argv[1]).engine, "
            "DescriptorPartition('artist', IdRange(0, 999)), 'raw'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(600)\n",
            dep.index_url,
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        with pytest.raises(PartitionBusy), held(dep.store.engine, ARTISTS_0, "raw", wait=0.5):
            pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        with held(dep.store.engine, ARTISTS_0, "raw", wait=30):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_blocking_check_forgets_hashes_only_between_whole_passes(
    backend_deployment: Deployment,
) -> None:
    """A blocking check of one run forgets the rejected rows' hashes and the stage token. If
    that landed inside another run's whole normalize pass, the pass would record its token
    over rows left to redo and the freshness gate would call the partition current: the
    forget waits for the stage lock instead."""
    dep = backend_deployment
    dep.register()
    assert dep.materialize(ARTISTS_0).success
    frame = pd.DataFrame({"resource_id": [5]})
    blocked = SimpleNamespace(critical_failed=["a blocking expectation"])

    def input_hash() -> str | None:
        return _stored(dep, normalized_descriptors, "input_hash")

    before = input_hash()
    assert before
    store = replace(dep.store, lock_wait=20.0)  # a failed assertion frees the thread soon
    forgot = threading.Thread(
        target=_forget_if_blocked, args=(blocked, frame, store, "normalized", [ARTISTS_0])
    )
    with held(dep.store.engine, ARTISTS_0, "normalize"):  # another run's whole pass
        forgot.start()
        time.sleep(1.5)
        assert forgot.is_alive() and input_hash() == before
    forgot.join(60)
    assert not forgot.is_alive()
    assert input_hash() in (None, "")  # redone and re-validated by the next run


def test_a_forget_that_outwaits_the_lock_still_happens(backend_deployment: Deployment) -> None:
    """A stuck writer holds the lock past the wait: the rejected rows are forgotten anyway
    (late beats never: a retried step would find the stage current and lose them)."""
    dep = backend_deployment
    dep.register()
    assert dep.materialize(ARTISTS_0).success
    done: list[bool] = []
    with held(dep.store.engine, ARTISTS_0, "normalize"):
        forgot = threading.Thread(
            target=lambda: done.append(
                under_all(dep.store.engine, [ARTISTS_0], "normalize", 0.5, lambda: None)
            )
        )
        forgot.start()
        forgot.join(30)
        assert done == [False]  # ran without the lock, while the holder still held it
