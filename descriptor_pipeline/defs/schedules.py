"""Schedules (weekly full refresh, daily reconciliation) and the operator jobs they and the UI
launch (reconciliation, targeted reindex). Repairs go through the refresh queue, which
`refresh_queue_sensor` drains into `refresh_descriptors` runs: one code path for every mode.

The cron strings are deployment settings read when the code location loads
(`DESCRIPTOR_FULL_REFRESH_CRON`, `DESCRIPTOR_RECONCILE_CRON`): a schedule's cron is part of
its definition in Dagster, unlike resource config which is resolved per run.

No `from __future__ import annotations`: Dagster reads op/resource annotations at runtime.
"""

import os

import dagster as dg

from descriptor_pipeline import refresh
from descriptor_pipeline.defs.jobs import refresh_descriptors_job
from descriptor_pipeline.defs.partitions import all_partitions, multi_partition_key
from descriptor_pipeline.defs.resources import CatalogResource, IndexStoreResource, PipelineSettings
from descriptor_pipeline.stages import partitions_with_rows

DEFAULT_FULL_REFRESH_CRON = "0 3 * * 0"  # Sundays 03:00
DEFAULT_RECONCILE_CRON = "30 4 * * *"  # daily 04:30, after the nightly catalog imports


def _cron(variable: str, default: str) -> str:
    return os.environ.get(variable) or default


# ---------------------------------------------------------------- 5a. full refresh


@dg.schedule(
    job=refresh_descriptors_job,
    cron_schedule=_cron("DESCRIPTOR_FULL_REFRESH_CRON", DEFAULT_FULL_REFRESH_CRON),
    execution_timezone="UTC",
    description="Re-runs every partition (unchanged rows are skipped by hash): catches what "
    "the sensors cannot see, e.g. a normalization rule bump. Runs on the bulk lane.",
)
def full_refresh_schedule(
    context: dg.ScheduleEvaluationContext, catalog: CatalogResource, index_store: IndexStoreResource
) -> list[dg.RunRequest] | dg.SkipReason:
    registered = all_partitions(context.instance)
    if not registered:
        return dg.SkipReason("no id ranges registered yet (the growth sensor adds them)")
    # only partitions with rows somewhere: most type x range combinations of a big catalog
    # are empty, and each request would cost a run
    partitions = partitions_with_rows(catalog.source(), index_store.store(), registered)
    stamp = context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
    return [
        dg.RunRequest(
            run_key=f"full:{stamp}:{p.key}",
            partition_key=multi_partition_key(p),
            tags=refresh.run_tags("full"),
        )
        for p in partitions
    ]


# ---------------------------------------------------------------- 5b. reconciliation


@dg.op(
    description="Compares catalog and index for every partition and queues the resources "
    "found missing, orphaned, stale or published with older rules."
)
def reconcile_index(
    context: dg.OpExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
    settings: PipelineSettings,
) -> dg.Output[dict]:
    source, store = catalog.source(), index_store.store()
    totals = {"missing": 0, "orphaned": 0, "stale": 0, "old_version": 0}
    partitions_to_repair = []
    for partition in all_partitions(context.instance):
        report = refresh.reconcile_partition(source, store, partition, settings.chunk_size)
        if not report.repair_ids:
            continue
        for name, n in report.counts().items():
            totals[name] += n
        partitions_to_repair.append(partition.key)
        refresh.enqueue(store, {partition.resource_type: report.repair_ids}, "reconcile")
        store.invalidate_published(partition.resource_type, report.repair_ids)
        context.log.info(f"{partition.key}: {report.counts()}")
    return dg.Output(
        totals,
        metadata={
            **totals,
            "partitions_to_repair": len(partitions_to_repair),
            "partition_keys": dg.MetadataValue.json(partitions_to_repair[:200]),
        },
    )


@dg.job(name="reconcile_catalog_and_index", tags=refresh.run_tags("reconcile"))
def reconcile_job() -> None:
    """Daily diff of catalog and index; repairs are queued, not run inline."""
    reconcile_index()


reconcile_schedule = dg.ScheduleDefinition(
    name="reconcile_schedule",
    job=reconcile_job,
    cron_schedule=_cron("DESCRIPTOR_RECONCILE_CRON", DEFAULT_RECONCILE_CRON),
    execution_timezone="UTC",
)


# ---------------------------------------------------------------- 4. targeted reindex


class ReindexConfig(dg.Config):
    """What an operator types in the launchpad."""

    resource_type: str
    ids: list[int]


@dg.op(description="Validates the ids against the catalog and queues the known ones.")
def queue_reindex(
    context: dg.OpExecutionContext,
    config: ReindexConfig,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
) -> dg.Output[int]:
    try:
        known, unknown = refresh.split_known_ids(catalog.source(), config.resource_type, config.ids)
    except ValueError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    refresh.enqueue(index_store.store(), {config.resource_type: known}, "targeted")
    if unknown:
        raise dg.Failure(
            description=f"{len(unknown)} of {len(set(config.ids))} {config.resource_type} ids are "
            f"not in the catalog: {unknown[:50]}. The {len(known)} known ids were queued.",
            metadata={"queued": len(known), "unknown_ids": dg.MetadataValue.json(unknown)},
            allow_retries=False,
        )
    context.log.info(f"queued {len(known)} {config.resource_type} ids for reindex")
    return dg.Output(len(known), metadata={"queued": len(known)})


@dg.job(name="reindex_resources", tags=refresh.run_tags("targeted"))
def reindex_job() -> None:
    """Reindex given resources (run config: resource_type, ids); refresh_queue_sensor then
    refreshes their partitions."""
    queue_reindex()


schedules: list[dg.ScheduleDefinition] = [full_refresh_schedule, reconcile_schedule]
jobs: list[dg.JobDefinition] = [reconcile_job, reindex_job]
