"""Whether a partition is current, decided from ledgers without reading a row of it.

The stages leave a chain of tokens after each whole-partition pass: raw records the catalog
range's fingerprint (`range_fingerprints`), normalize the fingerprint it consumed under today's
rules, publish the normalize token it consumed under today's document version and table. A pass
over only some ids that wrote something forgets its stage's token, and so does an invalidation
(`IndexStore.invalidate`), so a token is only ever present when the stage's table is exactly what
a whole pass over that input left. The scheduled full refresh launches runs only for partitions
that are not current: a no-change refresh costs one fingerprint query per partition instead of a
run, and still sees deletes, link changes and rule bumps (a cursor on `updated_at` sees none).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.documents import DOCUMENT_VERSION
from descriptor_pipeline.id_ranges import DescriptorPartition
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.normalization import rules_fingerprint
from descriptor_pipeline.rules import NormalizationContext
from descriptor_pipeline.tables import normalized_descriptors

NORMALIZE = "normalize"
PUBLISH = "publish"


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def normalize_token(fingerprint: str | None, ctx: NormalizationContext) -> str | None:
    """What a whole normalize pass consumed: the raw rows of a fingerprinted catalog range,
    under these rules. None where the catalog has no fingerprint (SQLite): never current."""
    return None if fingerprint is None else _digest(fingerprint, rules_fingerprint(ctx))


def publish_token(normalized: str | None, table_name: str) -> str | None:
    """What a whole publish pass consumed: the normalized rows of that token, built into
    documents of this version in this table."""
    return None if normalized is None else _digest(normalized, str(DOCUMENT_VERSION), table_name)


def is_current(
    source: CatalogSource,
    store: IndexStore,
    partition: DescriptorPartition,
    ctx: NormalizationContext,
    table_name: str,
) -> bool:
    """The catalog range is as the last whole raw sync saw it, and normalize and publish each
    consumed exactly what the stage before them left, under today's rules and version."""
    fingerprint = source.fingerprint(partition.resource_type, partition.id_range)
    if fingerprint is None or store.unchanged_rows(partition, fingerprint) is None:
        return False
    normalized = normalize_token(fingerprint, ctx)
    if store.current_stage_rows(partition, NORMALIZE, normalized, normalized_descriptors) is None:
        return False
    published = publish_token(normalized, table_name)
    index = store.index_table(table_name)
    return store.current_stage_rows(partition, PUBLISH, published, index) is not None


def partitions_with_rows(
    source: CatalogSource, store: IndexStore, partitions: list[DescriptorPartition]
) -> list[DescriptorPartition]:
    """The partitions a full refresh must run: rows in the catalog or in the pipeline's tables.

    Every resource type shares the id ranges, so most type x range combinations of a large
    catalog are empty (1 of 78 genre ranges at 1M resources); each would still cost a run.
    """
    wanted = source.occupied(partitions) | store.occupied(partitions)
    return [p for p in partitions if p in wanted]


def stale_partitions(
    source: CatalogSource,
    store: IndexStore,
    partitions: Sequence[DescriptorPartition],
    ctx: NormalizationContext,
    table_name: str,
    budget_seconds: float,
    connections: int = 1,
) -> list[DescriptorPartition]:
    """The partitions a full refresh must run, in the order given. Past the time budget
    (`FreshnessSettings.gate_budget_seconds`) the rest are returned unexamined: running a
    current partition costs a run, skipping a stale one would cost correctness, and a schedule
    tick has a time limit.

    `connections` partitions are examined at once, each on its own connection: a fingerprint
    is the database's work (md5 over the range's rows), so the gate scales with its cores.
    """

    def current(partition: DescriptorPartition) -> bool:
        try:
            return is_current(source, store, partition, ctx, table_name)
        except Exception:  # a run of the partition reports the error; the gate must not
            return False

    deadline = time.monotonic() + budget_seconds
    examined: list[bool] = []
    with ThreadPoolExecutor(max_workers=connections, thread_name_prefix="gate") as pool:
        for start in range(0, len(partitions), connections):
            if time.monotonic() > deadline:
                break
            examined += pool.map(current, partitions[start : start + connections])
    unexamined = list(partitions[len(examined) :])
    return [p for p, ok in zip(partitions, examined, strict=False) if not ok] + unexamined
