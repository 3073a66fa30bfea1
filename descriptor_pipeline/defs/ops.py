"""The operator jobs' ops: each compares or validates, then appends to the refresh queue, and
`refresh_queue_sensor` launches the real assets for the affected partitions, scoped to the ids.
One code path publishes, whatever asked for it.

No `from __future__ import annotations`: Dagster reads op/config annotations at runtime.
"""

from typing import Literal

import dagster as dg
from pydantic import Field

from descriptor_pipeline.defs.assets import NO_RUN_RETRY
from descriptor_pipeline.defs.partitions import all_partitions
from descriptor_pipeline.defs.resources import CatalogResource, IndexStoreResource, PipelineSettings
from descriptor_pipeline.refresh.queue import enqueue
from descriptor_pipeline.refresh.reconcile import reconcile_partition
from descriptor_pipeline.refresh.requests import split_known_ids

ResourceType = Literal["genre", "artist", "album", "track"]


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
        report = reconcile_partition(source, store, partition, settings.chunk_size)
        if not report.repair_ids:
            continue
        for name, n in report.counts().items():
            totals[name] += n
        partitions_to_repair.append(partition.key)
        enqueue(store, {partition.resource_type: report.repair_ids}, "reconcile")
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


class ReindexConfig(dg.Config):
    """What an operator types in the launchpad."""

    resource_type: ResourceType = Field(description="Which resource type the ids belong to.")
    ids: list[int] = Field(description="Catalog ids to re-index; unknown ids are reported.")


@dg.op(description="Validates the ids against the catalog and queues the known ones.")
def queue_reindex(
    context: dg.OpExecutionContext,
    config: ReindexConfig,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
) -> dg.Output[int]:
    known, unknown = split_known_ids(catalog.source(), config.resource_type, config.ids)
    enqueue(index_store.store(), {config.resource_type: known}, "targeted")
    if unknown:  # a typo stays a typo: neither the step nor the daemon's run retry repeats it
        context.instance.add_run_tags(context.run.run_id, NO_RUN_RETRY)
        raise dg.Failure(
            description=f"{len(unknown)} of {len(set(config.ids))} {config.resource_type} ids are "
            f"not in the catalog: {unknown[:50]}. The {len(known)} known ids were queued.",
            metadata={"queued": len(known), "unknown_ids": dg.MetadataValue.json(unknown)},
            allow_retries=False,
        )
    context.log.info(f"queued {len(known)} {config.resource_type} ids for reindex")
    return dg.Output(len(known), metadata={"queued": len(known)})


@dg.op(
    description="Queues every quarantined row for a scoped rerun of the real assets: rows that "
    "now pass leave quarantine and are published, the others stay with their reason."
)
def queue_quarantined(
    context: dg.OpExecutionContext, index_store: IndexStoreResource
) -> dg.Output[int]:
    store = index_store.store()
    rows = store.quarantine_rows()
    by_type: dict[str, set[int]] = {}
    for resource_type, resource_id in zip(rows["resource_type"], rows["resource_id"], strict=True):
        by_type.setdefault(str(resource_type), set()).add(int(resource_id))
    queued = enqueue(store, by_type, "replay")
    partitions = sorted(set(rows["partition_key"]))
    context.log.info(f"queued {queued} quarantined rows of {len(partitions)} partitions")
    return dg.Output(
        queued,
        metadata={
            "queued": queued,
            "partitions": len(partitions),
            "partition_keys": dg.MetadataValue.json(partitions[:200]),
        },
    )
