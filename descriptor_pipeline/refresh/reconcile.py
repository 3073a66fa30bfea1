"""Reconciliation: what one partition's catalog and index disagree about, found without writing.

The daily `reconcile_catalog_and_index` job queues the ids found here (reason `reconcile`); it
catches what the sensors cannot see, such as a change that did not bump `updated_at`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.id_ranges import DescriptorPartition
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.normalization import NORMALIZATION_VERSION
from descriptor_pipeline.tables import normalized_descriptors


@dataclass
class ReconcileReport:
    """What one partition's catalog and index disagree about (ids per finding)."""

    partition: DescriptorPartition
    missing: set[int] = field(default_factory=set)  # in the catalog, publishable, not indexed
    orphaned: set[int] = field(default_factory=set)  # indexed, gone from the catalog
    stale: set[int] = field(default_factory=set)  # catalog content or normalized row moved on
    old_version: set[int] = field(default_factory=set)  # published with older rules

    @property
    def repair_ids(self) -> set[int]:
        return self.missing | self.orphaned | self.stale | self.old_version

    def counts(self) -> dict[str, int]:
        return {
            "missing": len(self.missing),
            "orphaned": len(self.orphaned),
            "stale": len(self.stale),
            "old_version": len(self.old_version),
        }


def reconcile_partition(
    source: CatalogSource, store: IndexStore, partition: DescriptorPartition, chunk_size: int
) -> ReconcileReport:
    """Diff one partition without writing: catalog rows are hashed exactly as extraction does,
    so a change that did not bump `updated_at` (an M2M link, a linked rename) shows as stale."""
    from descriptor_pipeline.documents import document_from_stored
    from descriptor_pipeline.raw_stage import validate_raw

    report = ReconcileReport(partition)
    catalog_ids: set[int] = set()
    catalog_hash: dict[int, str] = {}
    for chunk in source.iter_chunks(partition.resource_type, partition.id_range, chunk_size):
        good, rejected = validate_raw(chunk.rows)
        catalog_ids.update(int(r["resource_id"]) for r in chunk.rows)
        catalog_hash.update({int(r["resource_id"]): r["raw_hash"] for r in good})
        del rejected  # quarantined on purpose: not something to repair
    raw, index, quarantined = store.reconcile_view(partition)
    # the documents the stored normalized rows would publish now, built by the same function
    # publishing uses: a different hash means the index lags behind its own pipeline
    expected: dict[int, str] = {}
    for _, records in store.iter_records(normalized_descriptors, partition, chunk_size):
        for stored in records:
            document = document_from_stored(partition.resource_type, stored)
            if document is not None:  # blocked: withdrawn, not expected in the index
                expected[int(stored["resource_id"])] = document["content_hash"]
    for resource_id, digest in catalog_hash.items():
        if raw.get(resource_id) != digest:
            report.stale.add(resource_id)
        if resource_id in quarantined:
            continue
        if resource_id not in index:
            if resource_id in expected or resource_id not in raw:
                report.missing.add(resource_id)  # publishable, or never extracted
        elif resource_id in expected and index[resource_id][0] != expected[resource_id]:
            report.stale.add(resource_id)
    for resource_id, (_, version) in index.items():
        if resource_id not in catalog_ids:
            report.orphaned.add(resource_id)
        elif version != NORMALIZATION_VERSION:
            report.old_version.add(resource_id)
    report.stale -= report.missing
    return report
