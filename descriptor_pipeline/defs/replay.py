"""Replay of the quarantine: re-run the partitions that hold quarantined rows after a fix.

No `from __future__ import annotations` here: Dagster reads the context annotation at runtime.
"""

import dagster as dg

from descriptor_pipeline import quality, refresh
from descriptor_pipeline.defs.checks import INDEX, NORMALIZED, RAW
from descriptor_pipeline.defs.resources import CatalogResource, IndexStoreResource, PipelineSettings
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.raw_stage import extract_raw
from descriptor_pipeline.stages import (
    normalization_context,
    normalize_partition,
    publish_partition,
)


def quarantined_partitions(store: IndexStore) -> list[DescriptorPartition]:
    """The partitions that hold at least one quarantined row, in key order."""
    keys = sorted(set(store.quarantine_rows()["partition_key"]))
    out = []
    for key in keys:
        id_range, _, resource_type = key.partition("|")
        out.append(DescriptorPartition(resource_type, IdRange.parse(id_range)))
    return out


@dg.op(
    description="Re-run raw -> normalized -> (critical suite) -> index for every partition "
    "named in descriptor_quarantine; rows that now pass leave quarantine and are published."
)
def replay_quarantined_partitions(
    context: dg.OpExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
    settings: PipelineSettings,
) -> dg.Output[None]:
    store, source = index_store.store(), catalog.source()
    before = len(store.quarantine_rows())
    replayed, blocked = [], []
    for partition in quarantined_partitions(store):
        key = partition.key
        normalization = normalization_context(source)
        validator = quality.LayerValidator(
            "normalized", partition.resource_type, normalization.genre_vocabulary
        )
        reports = [extract_raw(source, store, partition, settings.chunk_size)]
        reports.append(
            normalize_partition(
                store, partition, normalization, settings.chunk_size, observe=validator
            )
        )
        result = quality.validate(
            "normalized",
            partition.resource_type,
            validator.frame(),
            quality.Thresholds.from_env(),
        )
        assets = [RAW, NORMALIZED]
        if result.critical_failed:  # the same gate the blocking check applies in asset runs
            blocked.append(key)
            context.log.warning(f"{key}: critical expectations failed, not published")
        else:
            reports.append(publish_partition(store, partition, settings.chunk_size))
            assets.append(INDEX)
        for asset_key, report in zip(assets, reports, strict=True):
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=asset_key,
                    partition=key,
                    metadata={**report.metadata(), "replay": True},
                )
            )
        replayed.append(key)
    after = len(store.quarantine_rows())
    return dg.Output(
        None,
        metadata={
            "partitions_replayed": len(replayed),
            "partitions_blocked": ", ".join(blocked) or "none",
            "quarantined_before": before,
            "quarantined_after": after,
            "rows_released": before - after,
        },
    )


@dg.job(
    tags=refresh.run_tags("replay"),
    description="Replay quarantined rows after a fix of a rule or of the catalog data: "
    "re-runs every partition that has rows in descriptor_quarantine."
)
def replay_quarantine() -> None:
    replay_quarantined_partitions()


jobs: list[dg.JobDefinition] = [replay_quarantine]
