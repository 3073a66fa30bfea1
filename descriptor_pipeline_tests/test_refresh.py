"""Async refresh through Dagster's machinery: sensors and schedules evaluated with real cursors
across ticks, their run requests executed with `materialize` on the same instance."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.defs import jobs, schedules, sensors
from descriptor_pipeline.defs.assets import descriptor_assets
from descriptor_pipeline.defs.definition_settings import DefinitionSettings
from descriptor_pipeline.defs.resources import FreshnessSettings
from descriptor_pipeline.demo.seed import SEEDED_AT
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange, RangeLookup
from descriptor_pipeline.refresh.changes import (
    IncrementalCursor,
    bootstrap_position,
    dependants_of,
    scan_changes,
)
from descriptor_pipeline.refresh.queue import enqueue, queue_depth
from descriptor_pipeline.refresh.reconcile import reconcile_partition
from descriptor_pipeline.refresh.requests import submit_request
from descriptor_pipeline.refresh.tags import TAG_LANE, TAG_MODE
from descriptor_pipeline.tables import descriptor_index, refresh_queue, refresh_requests
from descriptor_pipeline_tests.conftest import Deployment, metadata_of

ARTISTS_0 = DescriptorPartition("artist", IdRange(0, 999))
ARTISTS_1 = DescriptorPartition("artist", IdRange(1000, 1999))
TRACKS_0 = DescriptorPartition("track", IdRange(0, 999))
T0 = SEEDED_AT + timedelta(days=1)  # later than every seeded updated_at


# ---------------------------------------------------------------- helpers


def touch(
    dep: Deployment, resource_type: str, resource_id: int, at: datetime, **values: Any
) -> None:
    """A catalog write as the app does it: new values and updated_at in one statement."""
    table = dep.catalog.resource_table(resource_type)
    cfg = dep.catalog.config.resource(resource_type)
    with dep.catalog.engine.begin() as conn:
        conn.execute(
            table.update()
            .where(table.c[cfg.id_column] == resource_id)
            .values({cfg.updated_at_column: at, **values})
        )


def tick(
    sensor: dg.SensorDefinition, dep: Deployment, cursor: str | None = None
) -> dg.SensorResult:
    # entered, so the resources it builds are torn down with it (Dagster's documented form)
    with dg.build_sensor_context(
        instance=dep.instance, cursor=cursor, resources=dep.resources()
    ) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def launch(dep: Deployment, request: dg.RunRequest, **kwargs: Any) -> dg.ExecuteInProcessResult:
    """What the daemon does with a run request: a run of the three assets, with its tags."""
    return dg.materialize(
        descriptor_assets,
        partition_key=request.partition_key,
        tags=request.tags,
        instance=dep.instance,
        resources=dep.resources(),
        **kwargs,
    )


def partition_keys(requests: list[dg.RunRequest]) -> list[str]:
    return sorted(str(r.partition_key) for r in requests)


def index_rows(dep: Deployment) -> dict[tuple[str, int], tuple[str, object]]:
    with dep.store.engine.connect() as conn:
        return {
            (r.resource_type, r.resource_id): (r.content_hash, r.published_at)
            for r in conn.execute(sa.select(descriptor_index))
        }


def ids_between(source: CatalogSource, resource_type: str, first: int, last: int) -> list[int]:
    table = source.resource_table(resource_type)
    id_col = table.c[source.config.resource(resource_type).id_column]
    with source.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(id_col).where(id_col.between(first, last)).order_by(id_col)
            ).scalars()
        )


@pytest.fixture
def small_batches(deployment: Deployment) -> Deployment:
    """One partition per queue tick, set where operators set it: the freshness resource."""
    deployment.freshness = FreshnessSettings(queue_partitions_per_tick=1)
    return deployment


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


# ---------------------------------------------------------------- fan-out through the queue


def test_fanout_drains_in_batches_and_survives_an_interrupted_tick(
    small_batches: Deployment,
) -> None:
    dep = small_batches
    dep.register()
    with dep.catalog.engine.connect() as conn:
        # the artist embedded in the most track partitions: the widest fan-out in the demo
        artist_id = conn.execute(
            sa.text(
                "SELECT artist_id FROM music_track_artists GROUP BY artist_id "
                "ORDER BY COUNT(DISTINCT track_id / 1000) DESC, COUNT(*) DESC LIMIT 1"
            )
        ).scalar_one()
    dependants = dependants_of(dep.catalog, "artist", [artist_id])
    lookup = RangeLookup(dep.instance.get_dynamic_partitions("id_range"))
    expected = {p.key for t, ids in dependants.items() for p in lookup.partitions(t, ids)[0]}
    assert len(expected) >= 2

    cursor = tick(sensors.incremental_refresh_sensor, dep).cursor
    touch(dep, "artist", artist_id, T0, name="Zyxwv Renamed")
    incremental = tick(sensors.incremental_refresh_sensor, dep, cursor)
    assert len(incremental.run_requests) == 1
    queued = sum(queue_depth(dep.store).values())
    assert queued == sum(len(v) for v in dependants.values())

    # tick 1 asks for one partition, but the daemon dies before storing its runs and cursor:
    # the same tick is evaluated again and asks for the same run (Dagster drops a seen run_key)
    lost = tick(sensors.refresh_queue_sensor, dep)
    assert len(lost.run_requests) == 1
    again = tick(sensors.refresh_queue_sensor, dep)
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in lost.run_requests]
    assert again.cursor == lost.cursor
    launched: list[str] = []
    requests, cursor = again.run_requests, again.cursor
    ticks = 2
    while requests:
        for req in requests:
            assert req.tags[TAG_MODE] == "fanout"
            assert launch(dep, req).success
            launched.append(str(req.partition_key))
        result = tick(sensors.refresh_queue_sensor, dep, cursor)
        requests, cursor = result.run_requests, result.cursor
        ticks += 1
        assert ticks < 20
    # every dependant partition ran exactly once, one partition per tick (small_batches)
    assert sorted(launched) == sorted(expected)
    tick(sensors.refresh_queue_sensor, dep, cursor)  # the committed cursor prunes the table
    assert queue_depth(dep.store) == {}
    for resource_type, ids in dependants.items():
        for resource_id in ids:
            document = dep.store.document(resource_type, resource_id)
            # every published dependant now embeds the new name (blocked ones are withdrawn)
            assert document is None or "Zyxwv" in str(document["document"]), (
                resource_type,
                resource_id,
            )
    print(
        f"\nartist rename {artist_id}: 1 artist partition + {len(expected)} dependant "
        f"partitions ({queued} resources) in {ticks} queue ticks"
    )


def test_fanout_waits_while_a_direct_change_is_in_flight(backend_deployment: Deployment) -> None:
    """Fan-out started beside the edited resource's own run shares its cores: the queue holds
    it while an incremental or targeted run is queued or running, for a bounded time, and
    never holds a direct request queued behind it."""
    dep = backend_deployment
    dep.register()
    with dep.catalog.engine.connect() as conn:
        artist_id = conn.execute(
            sa.text("SELECT artist_id FROM music_track_artists ORDER BY artist_id LIMIT 1")
        ).scalar_one()
    enqueue(dep.store, {"album": [3]}, "targeted")  # a request queued before the edit
    cursor = tick(sensors.incremental_refresh_sensor, dep).cursor
    touch(dep, "artist", artist_id, T0, name="Qwertz Renamed")
    (direct,) = tick(sensors.incremental_refresh_sensor, dep, cursor).run_requests
    assert sum(queue_depth(dep.store).values()) > 1

    def in_flight(mode: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
        """The daemon's side: a refresh run with these tags, not finished."""
        run = dg.DagsterRun(
            job_name="refresh_descriptors", status=status, tags={**direct.tags, TAG_MODE: mode}
        )
        return dep.instance.add_run(run)

    edit_run = in_flight("incremental", dg.DagsterRunStatus.NOT_STARTED)  # QUEUED needs an origin
    held = tick(sensors.refresh_queue_sensor, dep)
    # the request ahead of the fan-out is taken; the cursor stops just before the fan-out
    assert [r.tags[TAG_MODE] for r in held.run_requests] == ["targeted"]
    with dep.store.engine.connect() as conn:
        seqs = conn.execute(sa.select(refresh_queue.c.seq).order_by(refresh_queue.c.seq)).all()
    assert held.cursor == str(seqs[0][0])

    # the edit's run ended; another fan-out run in flight holds nothing
    dep.instance.report_run_canceled(edit_run)
    in_flight("fanout", dg.DagsterRunStatus.STARTED)
    released = tick(sensors.refresh_queue_sensor, dep, held.cursor)
    assert released.run_requests
    assert {r.tags[TAG_MODE] for r in released.run_requests} == {"fanout"}

    # a targeted run holds it too ...
    in_flight("targeted", dg.DagsterRunStatus.STARTED)
    again = tick(sensors.refresh_queue_sensor, dep, held.cursor)
    assert again.run_requests == [] and again.cursor == held.cursor
    assert again.skip_reason is not None
    assert again.skip_reason.skip_message == "fan-out waits for a direct change's run"
    # ... but not a direct request queued behind the fan-out
    enqueue(dep.store, {"album": [4]}, "targeted")
    behind = tick(sensors.refresh_queue_sensor, dep, held.cursor)
    assert {r.tags[TAG_MODE] for r in behind.run_requests} >= {"fanout", "targeted"}
    # ... and only for freshness.fanout_yield_seconds after queueing
    with dep.store.engine.begin() as conn:
        q = refresh_queue.c
        conn.execute(refresh_queue.delete().where(q.reason == "targeted", q.resource_id == 4))
        conn.execute(
            refresh_queue.update().values(enqueued_at=datetime.now(UTC) - timedelta(seconds=31))
        )
    overdue = tick(sensors.refresh_queue_sensor, dep, held.cursor)
    assert [r.run_key for r in overdue.run_requests] == [r.run_key for r in released.run_requests]


# ---------------------------------------------------------------- targeted reindex


def test_targeted_reindex_from_the_request_table_and_the_job(deployment: Deployment) -> None:
    dep = deployment
    dep.register()
    submit_request(dep.store, "album", [3, 4, 999_999], requested_by="test")
    submit_request(dep.store, "band", [1], requested_by="test")
    result = tick(sensors.refresh_queue_sensor, dep)
    assert partition_keys(result.run_requests) == [
        DescriptorPartition("album", IdRange(0, 999)).key
    ]
    assert result.run_requests[0].tags[TAG_MODE] == "targeted"
    with dep.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(refresh_requests).order_by(refresh_requests.c.request_id)
        ).all()
    assert [r.status for r in rows] == ["queued", "queued", "rejected", "rejected"]
    assert "no album with id 999999" in rows[2].detail
    assert "unknown resource type 'band'" in rows[3].detail

    job_result = jobs.reindex_job.execute_in_process(
        run_config={
            "ops": {"queue_reindex": {"config": {"resource_type": "track", "ids": [7, -1]}}}
        },
        instance=dep.instance,
        resources=dep.resources(),
        raise_on_error=False,
    )
    assert not job_result.success  # a clear error in the run, not a crash of anything else
    (failure,) = [e for e in job_result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message  # type: ignore[union-attr]
    assert "not in the catalog: [-1]" in message and "1 known ids were queued" in message
    assert queue_depth(dep.store)["track"] == 1
    # the launchpad offers the four types; an empty or unknown one never reaches a run
    for bad_type in ("", "band"):
        with pytest.raises(dg.DagsterInvalidConfigError):
            jobs.reindex_job.execute_in_process(
                run_config={
                    "ops": {"queue_reindex": {"config": {"resource_type": bad_type, "ids": [1]}}}
                },
                instance=dep.instance,
                resources=dep.resources(),
            )


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


# ---------------------------------------------------------------- full refresh, reconciliation


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


def test_reconciliation_finds_what_the_sensors_cannot_see(deployment: Deployment) -> None:
    dep = deployment
    dep.register()
    for partition in (ARTISTS_0, TRACKS_0):
        dep.materialize(partition)
    assert reconcile_partition(dep.catalog, dep.store, TRACKS_0, 500).repair_ids == set()
    with dep.catalog.engine.begin() as conn:
        track_id, artist_id = conn.execute(
            sa.text(
                "SELECT track_id, artist_id FROM music_track_artists "
                "WHERE track_id BETWEEN 20 AND 999 ORDER BY id"
            )
        ).first()
        # an M2M change does not bump updated_at: only a content comparison sees it
        conn.execute(
            sa.text("DELETE FROM music_track_artists WHERE track_id = :t AND artist_id = :a"),
            {"t": track_id, "a": artist_id},
        )
        conn.execute(sa.text("DELETE FROM music_track WHERE id = 11"))  # orphaned in the index
    with dep.store.engine.begin() as conn:
        track = descriptor_index.c.resource_type == "track"
        conn.execute(descriptor_index.delete().where(track, descriptor_index.c.resource_id == 12))
        conn.execute(
            descriptor_index.update()
            .where(track, descriptor_index.c.resource_id == 13)
            # as published by older rules: the version is part of the document's hash
            .values(normalization_version="old", content_hash="0" * 64)
        )
    report = reconcile_partition(dep.catalog, dep.store, TRACKS_0, 500)
    expected = {"track": {track_id, 11, 12, 13}}
    assert (report.stale, report.orphaned, report.missing, report.old_version) == (
        {track_id, 13},
        {11},
        {12},
        {13},
    )

    job = jobs.reconcile_job.execute_in_process(instance=dep.instance, resources=dep.resources())
    meta = job.output_for_node("reconcile_index")
    assert meta["orphaned"] >= 1 and meta["old_version"] == 1
    with dep.store.engine.connect() as conn:
        queued = {
            (t, i): r
            for t, i, r in conn.execute(
                sa.select(
                    refresh_queue.c.resource_type,
                    refresh_queue.c.resource_id,
                    refresh_queue.c.reason,
                )
            )
        }
    assert {("track", i) for i in expected["track"]} <= set(queued)
    assert {r for _, r in queued.items()} == {"reconcile"}
    # the repair for the track partition runs through the queue and leaves nothing to repair
    repaired, cursor = 0, None
    for _ in range(3):  # the other, never-built partitions may come first
        result = tick(sensors.refresh_queue_sensor, dep, cursor)
        cursor = result.cursor
        for request in result.run_requests:
            if str(request.partition_key) == TRACKS_0.key:
                assert request.tags[TAG_MODE] == "reconcile"
                assert launch(dep, request).success
                repaired += 1
    assert repaired == 1
    assert reconcile_partition(dep.catalog, dep.store, TRACKS_0, 500).repair_ids == set()


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
