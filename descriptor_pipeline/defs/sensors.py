"""Sensors that keep the index fresh. Each tick does bounded work (a tick has ~60 s) and hands
Dagster run requests for `refresh_descriptors` partitions, so every mode goes through the same
three assets. The logic lives in `descriptor_pipeline.refresh`; this module only wires it.

No `from __future__ import annotations`: Dagster reads the resource annotations at runtime.
"""

from datetime import UTC, datetime

import dagster as dg

from descriptor_pipeline.defs.definition_settings import AT_LOAD
from descriptor_pipeline.defs.jobs import refresh_descriptors_job
from descriptor_pipeline.defs.partitions import (
    ID_RANGE_PARTITIONS_NAME,
    id_range_partitions,
    missing_id_ranges,
    multi_partition_key,
    range_size_of,
)
from descriptor_pipeline.defs.resources import (
    CatalogResource,
    FreshnessSettings,
    IndexStoreResource,
)
from descriptor_pipeline.id_ranges import RESOURCE_TYPES, DescriptorPartition, RangeLookup
from descriptor_pipeline.refresh.changes import (
    IncrementalCursor,
    bootstrap_position,
    change_digest,
    dependants_of,
    scan_changes,
)
from descriptor_pipeline.refresh.queue import enqueue, prune_queue, read_queue
from descriptor_pipeline.refresh.requests import intake_requests
from descriptor_pipeline.refresh.tags import TAG_MODE, run_tags, scope_tags

PENDING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]
IN_FLIGHT = [*PENDING, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
PARTITION_TAG = "dagster/partition"
DIRECT_MODES = ["incremental", "targeted"]  # runs for the resource someone changed or named


def _request(partition: DescriptorPartition, run_key: str, mode: str, **tags: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        partition_key=multi_partition_key(partition),
        tags=run_tags(mode, **tags),
    )


def pending_partition_keys(instance: dg.DagsterInstance) -> set[str]:
    """Partitions with a run that has not started: it will read the catalog later, so a new
    request for the same partition would only repeat it."""
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=PENDING), limit=1000)
    return {
        r.dagster_run.tags[PARTITION_TAG] for r in records if PARTITION_TAG in r.dagster_run.tags
    }


def direct_change_in_flight(instance: dg.DagsterInstance) -> bool:
    """A run for a changed or named resource is queued or running: fan-out started beside it
    would share its cores and make the change itself reach the index later."""
    filters = dg.RunsFilter(statuses=IN_FLIGHT, tags={TAG_MODE: DIRECT_MODES})
    return bool(instance.get_run_records(filters=filters, limit=1))


# ---------------------------------------------------------------- 1. catalog growth


@dg.sensor(
    job=refresh_descriptors_job,
    minimum_interval_seconds=AT_LOAD.growth_interval_seconds,
    description="Adds id-range partitions when the catalog grows past the last range, and "
    "materializes the new resource type x range pairs that hold rows.",
)
def catalog_growth_sensor(
    context: dg.SensorEvaluationContext,
    catalog: CatalogResource,
    freshness: FreshnessSettings,
) -> dg.SensorResult:
    existing = context.instance.get_dynamic_partitions(ID_RANGE_PARTITIONS_NAME)
    source = catalog.source()
    size = range_size_of(existing, freshness.id_range_size)
    starts, not_positive = source.range_starts(size)
    if not_positive:
        context.log.warning(
            f"{not_positive} catalog rows have an id below 1: the first id range quarantines "
            "them (rule id_sign:id), they are not indexed; fix the ids in the catalog"
        )
    new = missing_id_ranges(existing, starts, size)[: freshness.new_ranges_per_tick]
    if not new:
        return dg.SensorResult(skip_reason="every id range with catalog rows is registered")
    # every type shares the ranges, so most new type x range pairs are empty: run only the
    # pairs with rows (an empty pair stays "missing" in the UI until a row arrives)
    occupied = source.occupied([DescriptorPartition(t, r) for r in new for t in RESOURCE_TYPES])
    # a new key is only ever added once, so its run_key may be constant
    requests = [
        _request(p, f"growth:{p.key}", "growth") for p in sorted(occupied, key=lambda p: p.key)
    ]
    context.log.info(
        f"adding {len(new)} id ranges: {new[0].key} .. {new[-1].key}; "
        f"{len(requests)} type x range pairs hold rows"
    )
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[id_range_partitions.build_add_request([r.key for r in new])],
    )


# ---------------------------------------------------------------- 2. incremental refresh


@dg.sensor(
    job=refresh_descriptors_job,
    minimum_interval_seconds=AT_LOAD.incremental_interval_seconds,
    description="Finds catalog rows whose updated_at moved (with a safety window for late "
    "commits), refreshes their partitions and queues the resources embedding them.",
)
def incremental_refresh_sensor(
    context: dg.SensorEvaluationContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
    freshness: FreshnessSettings,
) -> dg.SensorResult:
    settings = freshness.limits()
    source, store = catalog.source(), index_store.store()
    cursor = IncrementalCursor.from_json(context.cursor)
    ranges = RangeLookup(context.instance.get_dynamic_partitions(ID_RANGE_PARTITIONS_NAME))
    pending = pending_partition_keys(context.instance)
    requests: list[dg.RunRequest] = []
    found: list[str] = []
    for resource_type in RESOURCE_TYPES:
        if resource_type not in cursor.positions:
            start = bootstrap_position(source, resource_type, settings)
            if start is not None:
                cursor.positions[resource_type] = start
            continue  # the first tick only takes the position
        changes, position = scan_changes(
            source, resource_type, cursor.positions[resource_type], settings
        )
        if position is not None:
            cursor.positions[resource_type] = position
        if not changes:
            continue
        ids = [c.resource_id for c in changes]
        # dependants first: if the tick dies after this, the next one re-reads the same rows
        fanout = dependants_of(source, resource_type, ids)
        queued = enqueue(store, fanout, "fanout")
        by_partition, uncovered = ranges.partitions(resource_type, ids)
        late = sum(c.late for c in changes)
        found.append(
            f"{resource_type}: {len(changes)} changed ({late} late), {len(by_partition)} "
            f"partitions, {queued} dependants queued, {len(uncovered)} beyond the last range"
        )
        for partition, changed_ids in sorted(by_partition.items(), key=lambda p: p[0].key):
            if partition.key in pending:
                continue
            digest = change_digest(
                f"{c.resource_id}@{c.updated_at}" for c in changes if c.resource_id in changed_ids
            )
            requests.append(
                _request(
                    partition,
                    f"incremental:{partition.key}:{digest}",
                    "incremental",
                    **scope_tags(changed_ids),
                )
            )
    for line in found:
        context.log.info(line)
    return dg.SensorResult(
        run_requests=requests,
        cursor=cursor.to_json(),
        skip_reason=None if requests else "no changed partitions",
    )


# ---------------------------------------------------------------- 3 + 4. queue: fan-out, targeted


@dg.sensor(
    job=refresh_descriptors_job,
    minimum_interval_seconds=AT_LOAD.queue_interval_seconds,
    description="Drains the append-only refresh queue (linked-resource fan-out, targeted reindex "
    "requests, reconciliation repairs) a few partitions per tick; its cursor is the last queue "
    "row turned into a run request. Fan-out waits while an incremental or targeted run is in "
    "flight (freshness.fanout_yield_seconds at most).",
)
def refresh_queue_sensor(
    context: dg.SensorEvaluationContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
    freshness: FreshnessSettings,
) -> dg.SensorResult:
    settings = freshness.limits()
    store = index_store.store()
    committed = int(context.cursor or 0)
    # Dagster stored this cursor with the runs of the tick that produced it: rows up to it
    # are in runs now, and the table only keeps what is still to do
    prune_queue(store, committed)
    intake = intake_requests(catalog.source(), store, settings)
    for reason in intake.reasons:
        context.log.warning(f"reindex request rejected: {reason}")
    ranges = RangeLookup(context.instance.get_dynamic_partitions(ID_RANGE_PARTITIONS_NAME))
    hold_since = None
    if settings.fanout_yield and direct_change_in_flight(context.instance):
        hold_since = datetime.now(UTC) - settings.fanout_yield
    read = read_queue(store, ranges, committed, settings, hold_since)
    if read.held:
        context.log.info(
            f"{read.held} queued fan-out rows wait for the incremental or targeted run in "
            f"flight (at most {settings.fanout_yield.total_seconds():.0f} s after queueing)"
        )
    if read.uncovered:
        context.log.info(
            f"{read.uncovered} queued ids lie beyond the last id range: the growth sensor adds "
            "the range and its run indexes them"
        )
    requests = [
        _request(batch.partition, batch.run_key, batch.reason, **scope_tags(batch.ids))
        for batch in read.batches
    ]
    if requests:
        context.log.info(
            f"{len(requests)} partitions requested for queue rows {committed + 1}..{read.cursor}"
        )
    idle = "fan-out waits for a direct change's run" if read.held else "refresh queue is empty"
    return dg.SensorResult(
        run_requests=requests,
        cursor=str(read.cursor),
        skip_reason=None if requests else idle,
    )
