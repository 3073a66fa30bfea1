"""Async refresh through Dagster's machinery: sensors and schedules evaluated with real cursors
across ticks, their run requests executed with `materialize` on the same instance. Here: the
incremental sensor, the growth sensor, the full-refresh schedule, a crash mid-partition and its
resume, the cursor; what goes through the refresh queue is in test_refresh_queue.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.defs import schedules, sensors
from descriptor_pipeline.defs.definition_settings import DefinitionSettings
from descriptor_pipeline.defs.resources import FreshnessSettings
from descriptor_pipeline.refresh.changes import IncrementalCursor, bootstrap_position, scan_changes
from descriptor_pipeline.refresh.queue import queue_depth
from descriptor_pipeline.refresh.tags import TAG_LANE, TAG_MODE
from descriptor_pipeline.tables import descriptor_index
from descriptor_pipeline_tests.conftest import Deployment, metadata_of
from descriptor_pipeline_tests.refresh_steps import (
    ARTISTS_0,
    ARTISTS_1,
    T0,
    TRACKS_0,
    ids_between,
    index_rows,
    launch,
    partition_keys,
    tick,
    touch,
)

# ---------------------------------------------------------------- incremental refresh


def test_incremental_sensor_follows_the_cursor_and_catches_late_commits(
    backend_deployment: Deployment,
) -> None:
    dep = backend_deployment
    dep.register()
    for partition in (ARTISTS_0, ARTISTS_1):
        dep.materialize(partition)
    late_id = ids_between(dep.catalog, "artist", 1000, 1999)[0]
    too_late_id = ids_between(dep.catalog, "artist", 2000, 2999)[0]

    first = tick(sensors.incremental_refresh_sensor, dep)
    assert first.run_requests == [] and first.cursor  # the first tick only takes the position

    touch(dep, "artist", 5, T0, name="Renamed Artist Ωmega")
    second = tick(sensors.incremental_refresh_sensor, dep, first.cursor)
    assert partition_keys(second.run_requests) == [ARTISTS_0.key]
    (request,) = second.run_requests
    assert request.tags[TAG_MODE] == "incremental"
    assert request.tags[TAG_LANE] == "fresh"
    assert queue_depth(dep.store).get("track", 0) >= 1  # dependants were queued

    # nothing changed: the safety window is re-read, but what it holds was seen already
    third = tick(sensors.incremental_refresh_sensor, dep, second.cursor)
    assert third.run_requests == []

    # a transaction that started before the last tick commits now, with an older updated_at
    touch(dep, "artist", late_id, T0 - timedelta(seconds=60), name="Late Commit Ψ")
    touch(dep, "artist", too_late_id, T0 - timedelta(hours=1), name="Beyond The Window")
    fourth = tick(sensors.incremental_refresh_sensor, dep, third.cursor)
    assert partition_keys(fourth.run_requests) == [ARTISTS_1.key]

    # the same resource changing again must get a new run_key (Dagster drops seen keys)
    touch(dep, "artist", 5, T0 + timedelta(seconds=1), name="Renamed Artist Ωmega II")
    fifth = tick(sensors.incremental_refresh_sensor, dep, fourth.cursor)
    assert partition_keys(fifth.run_requests) == [ARTISTS_0.key]
    assert fifth.run_requests[0].run_key != request.run_key

    before = index_rows(dep)
    for req in (*fourth.run_requests, *fifth.run_requests):
        result = launch(dep, req)
        assert metadata_of(result, "descriptor_index")["rows_updated"] == 1
        # the tag the run queue's per-type limit keys on (dagster.yaml), set by Dagster itself
        assert result.dagster_run.tags["dagster/partition/resource_type"] == "artist"
    after = index_rows(dep)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {("artist", 5), ("artist", late_id)}  # not the row beyond the window


# ---------------------------------------------------------------- growth


def test_growth_sensor_adds_ranges_and_requests_them(deployment: Deployment) -> None:
    dep = deployment
    result = tick(sensors.catalog_growth_sensor, dep)
    (add,) = result.dynamic_partitions_requests
    assert list(add.partition_keys) == ["000000000-000009999"]  # freshness.id_range_size
    assert len(result.run_requests) == 4
    assert {r.tags[TAG_MODE] for r in result.run_requests} == {"growth"}
    dep.instance.add_dynamic_partitions("id_range", list(add.partition_keys))
    assert tick(sensors.catalog_growth_sensor, dep).run_requests == []
    with dep.catalog.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO music_genre (id, name, created_at, updated_at) "
                "VALUES (12345, 'new genre', :t, :t)"
            ),
            {"t": "2026-11-02 00:00:00.000000"},
        )
    grown = tick(sensors.catalog_growth_sensor, dep)
    assert list(grown.dynamic_partitions_requests[0].partition_keys) == ["000010000-000019999"]
    # only the pair that holds the new row runs: the other three types have no row there
    assert partition_keys(grown.run_requests) == ["000010000-000019999|genre"]


def test_growth_sensor_sizes_new_ranges_by_the_freshness_resource(deployment: Deployment) -> None:
    deployment.freshness = FreshnessSettings(id_range_size=1000)
    (add,) = tick(sensors.catalog_growth_sensor, deployment).dynamic_partitions_requests
    assert list(add.partition_keys) == [
        "000000000-000000999",
        "000001000-000001999",
        "000002000-000002999",
    ]


# ---------------------------------------------------------------- full refresh


def test_full_refresh_schedule_requests_every_partition_on_the_bulk_lane(
    deployment: Deployment,
) -> None:
    dep = deployment
    partitions = dep.register()
    when = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    with dg.build_schedule_context(
        instance=dep.instance, scheduled_execution_time=when, resources=dep.resources()
    ) as context:
        requests = schedules.full_refresh_schedule(context)
    # 3 id ranges x 4 types registered; albums stop below id 1000, genres below 2000
    empty = {"000001000-000001999|album", "000002000-000002999|album", "000002000-000002999|genre"}
    assert len(partitions) == 12
    assert isinstance(requests, list) and len(requests) == 9
    assert {str(r.partition_key) for r in requests} == {p.key for p in partitions} - empty
    assert {r.tags[TAG_LANE] for r in requests} == {"bulk"}
    assert len({r.run_key for r in requests}) == 9
    assert schedules.full_refresh_schedule.cron_schedule == DefinitionSettings().full_refresh_cron


# ---------------------------------------------------------------- crash and resume


def _crash_after(monkeypatch: pytest.MonkeyPatch, chunks: int) -> None:
    original = CatalogSource.iter_chunks

    def crashing(self: CatalogSource, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for n, chunk in enumerate(original(self, *args, **kwargs)):
            if n == chunks:
                raise dg.Failure("simulated crash mid-partition", allow_retries=False)
            yield chunk

    monkeypatch.setattr(CatalogSource, "iter_chunks", crashing)


def test_crash_mid_partition_then_resume_gives_the_clean_index(
    tmp_path: Any, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resume is what Dagster's re-execution from failure runs (the daemon's run_retries
    or the UI's "Re-execute from failure"): the failed partition's steps again, same tags."""
    from descriptor_pipeline.demo.seed import seed_catalog

    deps = []
    for name in ("clean", "crashed"):
        (tmp_path / name).mkdir()
        dep = Deployment(
            f"sqlite:///{tmp_path / name / 'catalog.sqlite'}",
            f"sqlite:///{tmp_path / name / 'index.sqlite'}",
            instance,
        )
        seed_catalog(dep.catalog.engine, dep.catalog.config)
        deps.append(dep)
    clean, crashed = deps
    clean.register()
    assert clean.materialize(TRACKS_0).success

    with monkeypatch.context() as patch:
        _crash_after(patch, 3)
        failed = crashed.materialize(TRACKS_0, raise_on_error=False)
    assert not failed.success
    with crashed.store.engine.connect() as conn:
        committed = conn.execute(sa.text("SELECT count(*) FROM raw_descriptors")).scalar_one()
    assert committed == 3 * crashed.chunk_size  # three chunks were committed before the crash

    resumed = crashed.materialize(TRACKS_0)
    raw = metadata_of(resumed, "raw_descriptors")
    assert raw["rows_unchanged"] == committed  # the checkpointed chunks were not rewritten

    def documents(dep: Deployment) -> dict[tuple[str, int], tuple[str, str]]:
        with dep.store.engine.connect() as conn:
            return {
                (r.resource_type, r.resource_id): (r.content_hash, r.document)
                for r in conn.execute(sa.select(descriptor_index))
            }

    assert documents(crashed) == documents(clean) and len(documents(clean)) > 900
    print(f"\nresume: {committed} rows kept from before the crash, index equal to a clean run")


# ---------------------------------------------------------------- pure cursor math


def test_cursor_round_trips_and_keeps_only_the_window(deployment: Deployment) -> None:
    dep = deployment
    position = bootstrap_position(dep.catalog, "genre")
    assert position is not None and position.seen
    cursor = IncrementalCursor({"genre": position})
    again = IncrementalCursor.from_json(cursor.to_json())
    assert again.positions["genre"] == position
    settings = FreshnessSettings(max_changes_per_type=10).limits()
    changes, moved = scan_changes(dep.catalog, "genre", None, settings)
    assert len(changes) == 10 and moved is not None  # a burst is worked off in bounded pages
    changes2, moved2 = scan_changes(dep.catalog, "genre", moved, settings)
    assert len(changes2) == 10 and not {c.resource_id for c in changes} & {
        c.resource_id for c in changes2
    }
    assert moved2 is not None and moved2.ts > moved.ts
