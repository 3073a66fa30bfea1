"""A partition is current only while nothing its index rows were built from has moved on; the
scheduled full refresh runs only partitions that are not current (`freshness.py`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.defs import schedules
from descriptor_pipeline.defs.resources import FreshnessSettings
from descriptor_pipeline.freshness import is_current, stale_partitions
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.refresh.tags import scope_tags
from descriptor_pipeline.rules import NormalizationContext
from descriptor_pipeline.stages import normalization_context
from descriptor_pipeline.tables import PUBLISHED_TABLE, descriptor_index, normalized_descriptors
from descriptor_pipeline_tests.conftest import Deployment, is_postgres, metadata_of

ARTISTS = DescriptorPartition("artist", IdRange(0, 999))
TRACKS = DescriptorPartition("track", IdRange(0, 999))
WHEN = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)


def current(dep: Deployment, partition: DescriptorPartition) -> bool:
    source = dep.catalog
    return is_current(source, dep.store, partition, normalization_context(source), PUBLISHED_TABLE)


def run_schedule(dep: Deployment) -> list[dg.RunRequest] | dg.SkipReason:
    with dg.build_schedule_context(
        instance=dep.instance, scheduled_execution_time=WHEN, resources=dep.resources()
    ) as context:
        return schedules.full_refresh_schedule(context)


def catalog_exec(dep: Deployment, sql: str) -> None:
    with dep.catalog.engine.begin() as conn:
        conn.execute(sa.text(sql))


def a_linked_track(dep: Deployment) -> tuple[int, int]:
    with dep.catalog.engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT track_id, artist_id FROM music_track_artists "
                "WHERE track_id < 1000 AND artist_id < 1000 ORDER BY track_id LIMIT 1"
            )
        ).one()
    return int(row[0]), int(row[1])


def test_a_whole_build_is_current_its_rerun_reads_nothing_and_the_schedule_skips_it(
    backend_deployment: Deployment,
) -> None:
    dep = backend_deployment
    results = dep.backfill()
    assert all(r.success for r in results)
    partitions = dep.register()
    requests = run_schedule(dep)
    if not is_postgres(dep):
        # no fingerprint without PostgreSQL: every partition with rows is run (rows skipped
        # by hash inside the run)
        assert not any(current(dep, p) for p in partitions)
        assert isinstance(requests, list) and len(requests) == 9
        return
    assert isinstance(requests, dg.SkipReason)
    assert "all 9 partitions with rows are current" in (requests.skip_message or "")
    rerun = dep.materialize(TRACKS)
    for asset in ("normalized_descriptors", "descriptor_index"):
        meta = metadata_of(rerun, asset)
        assert meta["input_unchanged"] is True and meta["rows_read"] == 0, (asset, meta)
        assert meta["rows_unchanged"] > 0 and meta["rows_written"] == 0
    assert current(dep, TRACKS)
    # the gate's time budget is the freshness resource's: once spent, the rest are requested
    dep.freshness = FreshnessSettings(gate_budget_seconds=-1.0)
    requests = run_schedule(dep)
    assert isinstance(requests, list) and len(requests) == 9


def edit_notes(dep: Deployment, artist_id: int, notes: str) -> None:
    """An editorial edit that leaves updated_at alone (and is not part of any track's text,
    which embeds linked artists' names only)."""
    catalog_exec(
        dep,
        "UPDATE music_artist SET custom_data = "
        f"""CAST('{{"description": "{notes}"}}' AS jsonb) WHERE id = {artist_id}""",
    )


def _edit_without_updated_at(dep: Deployment) -> DescriptorPartition:
    edit_notes(dep, 3, "edited without touching updated_at")
    return ARTISTS


def _unlink(dep: Deployment) -> DescriptorPartition:
    track_id, artist_id = a_linked_track(dep)
    catalog_exec(
        dep,
        f"DELETE FROM music_track_artists WHERE track_id = {track_id} AND artist_id = {artist_id}",
    )
    return TRACKS


def _delete_a_row(dep: Deployment) -> DescriptorPartition:
    track_id, _ = a_linked_track(dep)
    catalog_exec(dep, f"DELETE FROM music_track_artists WHERE track_id = {track_id}")
    catalog_exec(dep, f"DELETE FROM music_track WHERE id = {track_id}")
    return TRACKS


def _hand_edit_the_index(dep: Deployment) -> DescriptorPartition:
    with dep.store.engine.begin() as conn:
        conn.execute(
            descriptor_index.delete().where(
                descriptor_index.c.resource_type == "artist",
                descriptor_index.c.resource_id == 3,
            )
        )
    return ARTISTS


def _invalidate(dep: Deployment) -> DescriptorPartition:
    dep.store.invalidate(normalized_descriptors, "input_hash", "artist", [3])
    return ARTISTS


def _scoped_refresh(dep: Deployment) -> DescriptorPartition:
    edit_notes(dep, 3, "refreshed by a sensor")
    assert dep.materialize(ARTISTS, tags=scope_tags([3])).success
    edit_notes(dep, 3, "edited back")  # (a scoped run alone leaves the range unproven)
    return ARTISTS


@pytest.mark.parametrize(
    "change",
    [_edit_without_updated_at, _unlink, _delete_a_row, _hand_edit_the_index, _invalidate,
     _scoped_refresh],
)  # fmt: skip
def test_what_a_partition_was_built_from_moving_on_makes_it_stale_until_a_whole_run(
    pg_deployment: Deployment, change: Callable[[Deployment], DescriptorPartition]
) -> None:
    dep = pg_deployment
    dep.register()
    for partition in (ARTISTS, TRACKS):
        assert dep.materialize(partition).success
        assert current(dep, partition)
    stale = change(dep)
    assert not current(dep, stale)
    requests = run_schedule(dep)
    assert isinstance(requests, list)
    built = {ARTISTS.key, TRACKS.key}  # the other partitions with rows were never run
    assert {str(r.partition_key) for r in requests} & built == {stale.key}
    result = dep.materialize(stale)
    assets = ("raw_descriptors", "normalized_descriptors", "descriptor_index")
    assert sum(int(metadata_of(result, a)["rows_written"]) for a in assets) >= 1  # type: ignore[call-overload]
    assert current(dep, stale)
    requests = run_schedule(dep)
    assert isinstance(requests, list)
    assert not {str(r.partition_key) for r in requests} & built


def test_new_rules_or_another_table_make_every_built_partition_stale(
    pg_deployment: Deployment,
) -> None:
    dep = pg_deployment
    dep.register()
    assert dep.materialize(ARTISTS).success
    source = dep.catalog
    ctx = normalization_context(source)
    budget = dep.freshness.gate_budget_seconds

    def stale(
        ctx: NormalizationContext, table: str, seconds: float = budget
    ) -> list[DescriptorPartition]:
        return stale_partitions(source, dep.store, [ARTISTS], ctx, table, seconds)

    assert stale(ctx, PUBLISHED_TABLE) == []
    bumped = dataclasses.replace(ctx, profiles_fingerprint="another profile")
    assert stale(bumped, PUBLISHED_TABLE) == [ARTISTS]
    assert stale(ctx, "descriptor_index_shadow") == [ARTISTS]
    # past its time budget the gate stops examining and returns the rest: never skips one
    assert stale(ctx, PUBLISHED_TABLE, -1.0) == [ARTISTS]


def test_the_gate_examines_partitions_side_by_side_and_keeps_their_order(
    pg_deployment: Deployment,
) -> None:
    """Two connections at once give the same answer, in the order asked, as one; past the
    budget the unexamined rest is requested, after the stale ones found."""
    dep = pg_deployment
    registered = [p for p in dep.register() if p.resource_type in ("artist", "album")]
    built = registered[::2]
    for partition in built:
        assert dep.materialize(partition).success
    source = dep.catalog
    ctx = normalization_context(source)

    def stale(connections: int, budget: float = 60.0) -> list[DescriptorPartition]:
        return stale_partitions(
            source, dep.store, registered, ctx, PUBLISHED_TABLE, budget, connections
        )

    unbuilt = [p for p in registered if p not in built]
    assert len(registered) >= 4 and unbuilt
    assert stale(1) == unbuilt
    assert stale(2) == unbuilt
    assert stale(3) == unbuilt
    assert stale(2, budget=-1.0) == registered  # nothing examined: all requested
