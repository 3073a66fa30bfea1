"""Resource type × id range: the id ranges are dynamic so they grow with the catalog."""

from __future__ import annotations

import dagster as dg

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.id_ranges import (
    RESOURCE_TYPES,
    DescriptorPartition,
    IdRange,
)

ID_RANGE_PARTITIONS_NAME = "id_range"

id_range_partitions = dg.DynamicPartitionsDefinition(name=ID_RANGE_PARTITIONS_NAME)
resource_type_partitions = dg.StaticPartitionsDefinition(list(RESOURCE_TYPES))
descriptor_partitions = dg.MultiPartitionsDefinition(
    {"resource_type": resource_type_partitions, "id_range": id_range_partitions}
)


def partition_of(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> DescriptorPartition:
    return _descriptor_partition(context.partition_key)


def _descriptor_partition(key: str) -> DescriptorPartition:
    if not isinstance(key, dg.MultiPartitionKey):
        key = descriptor_partitions.get_partition_key_from_str(key)
    return DescriptorPartition.from_dimensions(key.keys_by_dimension)


def partitions_of(context: dg.AssetExecutionContext) -> list[DescriptorPartition]:
    """The partitions a run covers: one, or the range a backfill packed into the run
    (`BackfillPolicy.multi_run`: consecutive keys of one dimension)."""
    if not context.has_partition_key_range:
        return [partition_of(context)]
    return [_descriptor_partition(k) for k in context.partition_keys]


def multi_partition_key(partition: DescriptorPartition) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey(
        {"resource_type": partition.resource_type, "id_range": partition.id_range.key}
    )


def range_size_of(existing_keys: list[str], default_size: int) -> int:
    """Once ranges exist their size is kept (read from the last key), so changing the
    configured size never creates overlapping partitions."""
    if not existing_keys:
        return default_size
    last = max(IdRange.parse(k) for k in existing_keys)
    return last.last - last.first + 1


def missing_id_ranges(existing_keys: list[str], starts: list[int], size: int) -> list[IdRange]:
    """Ranges that hold catalog ids (their first ids: `CatalogSource.range_starts`) and are not
    registered yet, in id order."""
    have = set(existing_keys)
    ranges = (IdRange(start, start + size - 1) for start in starts)
    return [r for r in ranges if r.key not in have]


def register_id_ranges(
    instance: dg.DagsterInstance, source: CatalogSource, default_size: int
) -> list[IdRange]:
    """Register the id ranges that hold catalog rows (the CLI backfill, the tests, benchmarks)."""
    existing = instance.get_dynamic_partitions(ID_RANGE_PARTITIONS_NAME)
    size = range_size_of(existing, default_size)
    new = missing_id_ranges(existing, source.range_starts(size)[0], size)
    if new:
        instance.add_dynamic_partitions(ID_RANGE_PARTITIONS_NAME, [r.key for r in new])
    return new


def all_partitions(instance: dg.DagsterInstance) -> list[DescriptorPartition]:
    keys = sorted(instance.get_dynamic_partitions(ID_RANGE_PARTITIONS_NAME))
    return [DescriptorPartition(t, IdRange.parse(k)) for t in RESOURCE_TYPES for k in keys]
