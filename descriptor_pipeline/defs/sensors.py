"""Sensors that keep the index fresh. Each tick does bounded work (a tick has ~60 s) and hands
Dagster run requests for `refresh_descriptors` partitions, so every mode goes through the same
three assets. The logic lives in `descriptor_pipeline.refresh`; this module only wires it.

No `from __future__ import annotations`: Dagster reads the resource annotations at runtime.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from descriptor_pipeline import refresh
from descriptor_pipeline.defs.jobs import refresh_descriptors_job
from descriptor_pipeline.defs.partitions import (
    ID_RANGE_PARTITIONS_NAME,
    descriptor_partitions,
    id_range_partitions,
    missing_id_ranges,
    multi_partition_key,
)
from descriptor_pipeline.defs.resources import CatalogResource, IndexStoreResource, PipelineSettings
from descriptor_pipeline.id_ranges import RESOURCE_TYPES, DescriptorPartition

MAX_NEW_RANGES_PER_TICK = 50  # x 4 resource types = run requests per growth tick
RESUME_MAX_ATTEMPTS = 3
RESUME_BACKOFF = timedelta(minutes=2)  # doubled per consecutive failure
RESUME_LOOKBACK = timedelta(days=2)
PENDING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]
PARTITION_TAG = "dagster/partition"


def _request(partition: DescriptorPartition, run_key: str, mode: str, **tags: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        partition_key=multi_partition_key(partition),
        tags=refresh.run_tags(mode, partition.resource_type, **tags),
    )


def pending_partition_keys(instance: dg.DagsterInstance) -> set[str]:
    """Partitions with a run that has not started: it will read the catalog later, so a new
    request for the same partition would only repeat it."""
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=PENDING), limit=1000)
    return {
        r.dagster_run.tags[PARTITION_TAG] for r in records if PARTITION_TAG in r.dagster_run.tags
    }


# ---------------------------------------------------------------- 1. catalog growth


@dg.sensor(
    job=refresh_descriptors_job,
    minimum_interval_seconds=60,
    description="Adds id-range partitions when the catalog grows past the last range, and "
    "materializes them.",
)
def catalog_growth_sensor(
    context: dg.SensorEvaluationContext, catalog: CatalogResource, settings: PipelineSettings
) -> dg.SensorResult:
    existing = context.instance.get_dynamic_partitions(ID_RANGE_PARTITIONS_NAME)
    max_id = max(catalog.source().max_ids().values())
    new = missing_id_ranges(existing, max_id, settings.id_range_size)[:MAX_NEW_RANGES_PER_TICK]
    if not new:
        return dg.SensorResult(skip_reason=f"ids up to {max_id} are covered")
    # a new key is only ever added once, so its run_key may be constant
    requests = [
        _request(DescriptorPartition(t, r), f"growth:{r.key}|{t}", "growth")
        for r in new
        for t in RESOURCE_TYPES
    ]
    context.log.info(f"adding {len(new)} id ranges: {new[0].key} .. {new[-1].key}")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[id_range_partitions.build_add_request([r.key for r in new])],
    )


# ---------------------------------------------------------------- 2. incremental refresh


@dg.sensor(
    job=refresh_descriptors_job,
    minimum_interval_seconds=10,
    description="Finds catalog rows whose updated_at moved (with a safety window for late "
    "commits), refreshes their partitions and queues the resources embedding them.",
)
def incremental_refresh_sensor(
    context: dg.SensorEvaluationContext, catalog: CatalogResource, index_store: IndexStoreResource
) -> dg.SensorResult:
    settings = refresh.DEFAULT_SETTINGS
    source, store = catalog.source(), index_store.store()
    cursor = refresh.IncrementalCursor.from_json(context.cursor)
    ranges = refresh.RangeLookup(context.instance.get_dynamic_partitions(ID_RANGE_PARTITIONS_NAME))
    pending = pending_partition_keys(context.instance)
    requests: list[dg.RunRequest] = []
    found: list[str] = []
    for resource_type in RESOURCE_TYPES:
        if resource_type not in cursor.positions:
            start = refresh.bootstrap_position(source, resource_type, settings)
            if start is not None:
                cursor.positions[resource_type] = start
            continue  # the first tick only takes the position
        changes, position = refresh.scan_changes(
            source, resource_type, cursor.positions[resource_type], settings
        )
        if position is not None:
            cursor.positions[resource_type] = position
        if not changes:
            continue
        ids = [c.resource_id for c in changes]
        # dependants first: if the tick dies after this, the next one re-reads the same rows
        fanout = refresh.dependants_of(source, resource_type, ids)
        queued = refresh.enqueue(store, fanout, "fanout")
        by_partition, uncovered = ranges.partitions(resource_type, ids)
        late = sum(c.late for c in changes)
        found.append(
            f"{resource_type}: {len(changes)} changed ({late} late), {len(by_partition)} "
            f"partitions, {queued} dependants queued, {len(uncovered)} beyond the last range"
        )
        for partition, changed_ids in sorted(by_partition.items(), key=lambda p: p[0].key):
            if partition.key in pending:
                continue
            digest = refresh.change_digest(
                f"{c.resource_id}@{c.updated_at}" for c in changes if c.resource_id in changed_ids
            )
            requests.append(
                _request(
                    partition,
                    f"incremental:{partition.key}:{digest}",
                    "incremental",
                    **refresh.scope_tags(changed_ids),
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
    minimum_interval_seconds=15,
    description="Drains the refresh queue (linked-resource fan-out, targeted reindex requests, "
    "reconciliation repairs) a few partitions per tick; claimed rows are deleted only once "
    "their run exists.",
)
def refresh_queue_sensor(
    context: dg.SensorEvaluationContext, catalog: CatalogResource, index_store: IndexStoreResource
) -> dg.SensorResult:
    settings = refresh.DEFAULT_SETTINGS
    store = index_store.store()
    now = datetime.now(UTC)
    # acknowledge claims whose run was created; release claims whose tick died before that
    outstanding = refresh.outstanding_claims(store)
    if outstanding:
        launched = {
            r.dagster_run.tags[refresh.TAG_CLAIM]
            for r in context.instance.get_run_records(
                filters=dg.RunsFilter(tags={refresh.TAG_CLAIM: sorted(outstanding)})
            )
        }
        refresh.ack_claims(store, launched)
        expired = [
            k
            for k, at in outstanding.items()
            if k not in launched and now - at > settings.claim_lease
        ]
        if expired:
            context.log.warning(f"releasing {len(expired)} claims that never became runs")
            refresh.release_claims(store, expired)
    intake = refresh.intake_requests(catalog.source(), store, settings)
    for reason in intake.reasons:
        context.log.warning(f"reindex request rejected: {reason}")
    ranges = refresh.RangeLookup(context.instance.get_dynamic_partitions(ID_RANGE_PARTITIONS_NAME))
    claims = refresh.claim_batch(store, ranges, settings, now)
    pending = pending_partition_keys(context.instance)
    requests = []
    covered = []
    for claim in claims:
        if claim.partition.key in pending:
            covered.append(claim.claim_key)  # a run not yet started will read these rows
            continue
        requests.append(
            _request(
                claim.partition,
                claim.claim_key,
                claim.reason,
                **{refresh.TAG_CLAIM: claim.claim_key},
                **refresh.scope_tags(claim.ids),
            )
        )
    refresh.ack_claims(store, covered)
    if requests:
        context.log.info(
            f"{len(requests)} partitions requested for {sum(c.rows for c in claims)} queued rows"
        )
    return dg.SensorResult(
        run_requests=requests, skip_reason=None if requests else "refresh queue is empty"
    )


# ---------------------------------------------------------------- 6. resume failed partitions


def resume_backoff(attempt: int) -> timedelta:
    """Wait before re-requesting after the n-th consecutive failure (2, 4, 8 ... minutes)."""
    return RESUME_BACKOFF * (2 ** max(attempt - 1, 0))


@dg.sensor(
    job=refresh_descriptors_job,
    minimum_interval_seconds=60,
    description="Re-requests partitions whose latest run failed, with backoff, at most "
    f"{RESUME_MAX_ATTEMPTS} times in a row; committed chunks are skipped by hash on resume.",
)
def resume_failed_partitions_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    instance = context.instance
    now = datetime.now(UTC)
    failed = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.FAILURE], updated_after=now - RESUME_LOOKBACK
        ),
        limit=500,
    )
    partition_keys = sorted(
        {r.dagster_run.tags[PARTITION_TAG] for r in failed if PARTITION_TAG in r.dagster_run.tags}
    )
    requests = []
    gave_up = []
    for key in partition_keys[:100]:
        history = instance.get_run_records(
            filters=dg.RunsFilter(tags={PARTITION_TAG: key}), limit=RESUME_MAX_ATTEMPTS + 1
        )
        latest = history[0]
        if latest.dagster_run.status != dg.DagsterRunStatus.FAILURE:
            continue  # succeeded since, or a run is queued / in progress
        streak = 0
        for record in history:
            if record.dagster_run.status != dg.DagsterRunStatus.FAILURE:
                break
            streak += 1
        if streak > RESUME_MAX_ATTEMPTS:
            gave_up.append(key)
            continue
        ended = latest.end_time or latest.update_timestamp.timestamp()
        if now.timestamp() < ended + resume_backoff(streak).total_seconds():
            continue
        try:
            dims = descriptor_partitions.get_partition_key_from_str(key).keys_by_dimension
            partition = DescriptorPartition.from_dimensions(dims)
        except (ValueError, KeyError, dg.DagsterInvariantViolationError):
            continue  # a run of some other partitioned job
        requests.append(
            _request(
                partition,
                f"resume:{latest.dagster_run.run_id}",  # one resume per failed run
                "resume",
                **{refresh.TAG_ATTEMPT: str(streak)},
            )
        )
    if gave_up:
        context.log.warning(
            f"{len(gave_up)} partitions failed {RESUME_MAX_ATTEMPTS + 1} times in a row and are "
            f"left for an operator: {', '.join(gave_up[:20])}"
        )
    return dg.SensorResult(
        run_requests=requests, skip_reason=None if requests else "no failed partition is due"
    )


sensors: list[dg.SensorDefinition] = [
    catalog_growth_sensor,
    incremental_refresh_sensor,
    refresh_queue_sensor,
    resume_failed_partitions_sensor,
]
