"""What reaches the index through the refresh queue and `refresh_queue_sensor`, evaluated with
real cursors across ticks and its run requests executed with `materialize`: a change's fan-out
to its dependants (drained in batches, held while a direct change is in flight), targeted
reindex requests, and the repairs reconciliation queues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.defs import jobs, sensors
from descriptor_pipeline.defs.resources import FreshnessSettings
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange, RangeLookup
from descriptor_pipeline.refresh.changes import dependants_of
from descriptor_pipeline.refresh.queue import enqueue, queue_depth
from descriptor_pipeline.refresh.reconcile import reconcile_partition
from descriptor_pipeline.refresh.requests import submit_request
from descriptor_pipeline.refresh.tags import TAG_MODE
from descriptor_pipeline.tables import descriptor_index, refresh_queue, refresh_requests
from descriptor_pipeline_tests.conftest import Deployment
from descriptor_pipeline_tests.refresh_steps import (
    ARTISTS_0,
    T0,
    TRACKS_0,
    launch,
    partition_keys,
    tick,
    touch,
)


@pytest.fixture
def small_batches(deployment: Deployment) -> Deployment:
    """One partition per queue tick, set where operators set it: the freshness resource."""
    deployment.freshness = FreshnessSettings(queue_partitions_per_tick=1)
    return deployment


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


# ---------------------------------------------------------------- reconciliation


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
