"""The three partitioned assets. Each body is one sentence: run a stage, report what it did.

No `from __future__ import annotations` here: Dagster reads the context annotation at runtime.
"""

import dagster as dg

from descriptor_pipeline.defs.partitions import descriptor_partitions, partition_of
from descriptor_pipeline.defs.resources import CatalogResource, IndexStoreResource, PipelineSettings
from descriptor_pipeline.refresh import parse_scope
from descriptor_pipeline.stages import (
    extract_raw,
    normalization_context,
    normalize_partition,
    publish_partition,
)

# Transient errors (a dropped connection, a locked SQLite file) are retried with backoff.
transient_retry = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
GROUP = "descriptors"


def scope_of(context: dg.AssetExecutionContext) -> frozenset[int] | None:
    """A refresh sensor that knows which ids changed tags the run with them (descriptor/ids):
    the run then reads and writes only those rows of the partition."""
    return parse_scope(context.run.tags)


@dg.asset(
    partitions_def=descriptor_partitions,
    group_name=GROUP,
    retry_policy=transient_retry,
    kinds={"sql"},
)
def raw_descriptors(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
    settings: PipelineSettings,
) -> dg.MaterializeResult:
    """Catalog rows of the range with their linked rows' names; malformed rows quarantined."""
    report = extract_raw(
        catalog.source(),
        index_store.store(),
        partition_of(context),
        settings.chunk_size,
        only_ids=scope_of(context),
    )
    return dg.MaterializeResult(metadata=report.metadata())


@dg.asset(
    partitions_def=descriptor_partitions,
    group_name=GROUP,
    retry_policy=transient_retry,
    deps=[raw_descriptors],
    kinds={"pandas", "sql"},
)
def normalized_descriptors(
    context: dg.AssetExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
    settings: PipelineSettings,
) -> dg.MaterializeResult:
    """Canonical descriptors: every field with its provenance and normalization rules."""
    report = normalize_partition(
        index_store.store(),
        partition_of(context),
        normalization_context(catalog.source()),
        settings.chunk_size,
        only_ids=scope_of(context),
    )
    return dg.MaterializeResult(metadata=report.metadata())


@dg.asset(
    partitions_def=descriptor_partitions,
    group_name=GROUP,
    retry_policy=transient_retry,
    deps=[normalized_descriptors],
    kinds={"sql"},
)
def descriptor_index(
    context: dg.AssetExecutionContext, index_store: IndexStoreResource, settings: PipelineSettings
) -> dg.MaterializeResult:
    """The published search index: one document per resource, written in one transaction."""
    report = publish_partition(
        index_store.store(),
        partition_of(context),
        settings.chunk_size,
        settings.publish_table,
        only_ids=scope_of(context),
    )
    return dg.MaterializeResult(metadata=report.metadata())


descriptor_assets = [raw_descriptors, normalized_descriptors, descriptor_index]
