"""The stages of a partition as plain functions: catalog -> raw -> normalized -> index.

The raw stage is in `raw_stage`; this module holds normalize and publish and what every stage
shares (the report, the row observer, scoped paging).

Each asset body is one call to one of these; benchmarks and the CLI call them the same way.
Raw and normalized commit per chunk (a crash loses at most one chunk, and the rerun skips what
is already stored by hash); publishing commits the whole partition at once so search never sees
a half-updated range.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.documents import document_from_stored, publish_hash
from descriptor_pipeline.freshness import NORMALIZE, PUBLISH, normalize_token, publish_token
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.index_store import IndexStore, SyncCounts
from descriptor_pipeline.normalization import input_hash, normalize_rows
from descriptor_pipeline.partition_lock import serialized
from descriptor_pipeline.rules import GenreVocabulary, NormalizationContext
from descriptor_pipeline.schema import fields_of
from descriptor_pipeline.source_profiles import resolve as resolve_profiles
from descriptor_pipeline.store_engine import refused_updates
from descriptor_pipeline.tables import PUBLISHED_TABLE, normalized_descriptors, raw_descriptors

# Receives, per chunk, the rows a stage writes (new or changed), while they are still in memory:
# the asset checks validate these instead of re-reading the partition from the stage table.
RowObserver = Callable[[list[dict[str, Any]]], None]


@dataclass
class StageReport:
    """What a stage did for one partition: becomes the materialization's metadata."""

    stage: str
    partition_key: str
    counts: SyncCounts = field(default_factory=SyncCounts)
    rejected: int = 0
    fields_dropped: int = 0  # resources published without one or more bad fields
    quarantined: int = 0
    withdrawn: int = 0
    stale: int = 0  # updates `not_older` refused: another run had stored a newer version
    chunks: int = 0
    seconds: float = 0.0
    scoped_ids: int | None = None  # a scoped refresh: how many ids it was asked to look at

    partitions: int = 1  # >1 when a backfill packed several partitions into one run
    catalog_unchanged: bool = False  # the range's fingerprint matched: nothing was read
    input_unchanged: bool = False  # the stage's input token matched: nothing was read
    catalog_without: list[str] = field(default_factory=list)  # parts this catalog lacks

    @classmethod
    def combined(cls, reports: Sequence[StageReport]) -> StageReport:
        """One report for a run that processed several partitions of one asset."""
        if len(reports) == 1:
            return reports[0]
        out = cls(reports[0].stage, f"{reports[0].partition_key}..{reports[-1].partition_key}")
        out.partitions = len(reports)
        out.catalog_unchanged = out.input_unchanged = True
        for report in reports:
            out.counts.add(report.counts)
            out.rejected += report.rejected
            out.fields_dropped += report.fields_dropped
            out.quarantined += report.quarantined
            out.withdrawn += report.withdrawn
            out.stale += report.stale
            out.chunks += report.chunks
            out.seconds += report.seconds
            out.catalog_unchanged = out.catalog_unchanged and report.catalog_unchanged
            out.input_unchanged = out.input_unchanged and report.input_unchanged
            out.catalog_without = sorted({*out.catalog_without, *report.catalog_without})
            if report.scoped_ids is not None:
                out.scoped_ids = (out.scoped_ids or 0) + report.scoped_ids
        return out

    @property
    def changed_nothing(self) -> bool:
        return self.counts.written == 0

    def metadata(self) -> dict[str, Any]:
        c = self.counts
        return {
            "rows_read": c.read,
            "rows_inserted": c.inserted,
            "rows_updated": c.updated,
            "rows_unchanged": c.unchanged,
            "rows_deleted": c.deleted,
            "rows_written": c.written,
            "rows_rejected": self.rejected,
            "rows_with_fields_dropped": self.fields_dropped,
            "quarantined_total": self.quarantined,
            "rows_withdrawn": self.withdrawn,
            "rows_stale": self.stale,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "changed_nothing": self.changed_nothing,
            "scope": "whole partition" if self.scoped_ids is None else f"{self.scoped_ids} ids",
            "partitions_in_run": self.partitions,
            "catalog_unchanged": self.catalog_unchanged,
            "input_unchanged": self.input_unchanged,
            "catalog_without": ", ".join(self.catalog_without) or "nothing",
        }


def scoped_ids(
    partition: DescriptorPartition, only_ids: Iterable[int], chunk_size: int
) -> Iterator[list[int]]:
    """The partition's share of a scoped run's ids, sorted, in chunks."""
    ids = sorted({int(i) for i in only_ids if int(i) in partition.id_range})
    for start in range(0, len(ids), chunk_size):
        yield ids[start : start + chunk_size]


def within(existing: dict[int, str], scope: set[int] | None) -> dict[int, str]:
    """Stored hashes the run may change: all of the span, or only the scoped ids."""
    return existing if scope is None else {i: h for i, h in existing.items() if i in scope}


# ---------------------------------------------------------------- normalized


def normalization_context(source: CatalogSource) -> NormalizationContext:
    """The genre vocabulary and the fields with the catalog's source profiles applied."""
    fields, fingerprint = resolve_profiles(source.config.profiles_by_type())
    return NormalizationContext(
        GenreVocabulary.from_names(source.genre_names()), fields, fingerprint
    )


def _stored_normalized_rows(
    resource_type: str, records: list[dict[str, Any]], input_hashes: dict[int, str]
) -> list[dict[str, Any]]:
    """Canonical records as the stage table stores them: the fields as one JSON column."""
    names = [f.name for f in fields_of(resource_type)]
    now = datetime.now(UTC)
    rows = []
    for record in records:
        values = {n: record[n] for n in names}
        rows.append(
            {
                "resource_type": resource_type,
                "resource_id": int(record["resource_id"]),
                "name": values["name"],
                "fields": orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode(),
                "provenance": record["provenance"],
                "hidden": bool(values["hidden"]),
                "blocked": bool(values["blocked"]),
                "source_updated_at": record["source_updated_at"],
                "normalization_version": record["normalization_version"],
                "raw_hash": record["raw_hash"],
                "input_hash": input_hashes[int(record["resource_id"])],
                "content_hash": record["content_hash"],
                "normalized_at": now,
            }
        )
    return rows


def _stage_pages(
    store: IndexStore,
    table: sa.Table,
    partition: DescriptorPartition,
    chunk_size: int,
    only_ids: Iterable[int] | None,
    columns: Sequence[str] | None = None,
    conn: sa.Connection | None = None,
) -> Iterator[tuple[IdRange, list[dict[str, Any]], set[int] | None]]:
    """Pages of a stage table for the partition, as plain dicts: all of it, or only the
    scoped ids."""
    if only_ids is None:
        for span, records in store.iter_records(table, partition, chunk_size, conn, columns):
            yield span, records, None
        return
    names = list(columns or table.columns.keys())
    for ids in scoped_ids(partition, only_ids, chunk_size):
        if conn is not None:
            records = store.rows_by_id(conn, table, partition.resource_type, ids)
        else:
            with store.engine.connect() as own:
                records = store.rows_by_id(own, table, partition.resource_type, ids)
        yield IdRange(ids[0], ids[-1]), [{k: r[k] for k in names} for r in records], set(ids)


def _record_token(
    store: IndexStore,
    partition: DescriptorPartition,
    stage: str,
    token: str | None,
    table: sa.Table,
    report: StageReport,
) -> None:
    """A whole pass that no other run raced records what it consumed; any other pass that
    wrote rows forgets it (`freshness.py`)."""
    if report.scoped_ids is None and report.stale == 0:
        store.record_stage_token(partition, stage, token, table)
    elif report.counts.written:
        store.record_stage_token(partition, stage, None, table)


def _unchanged(report: StageReport, rows: int, started: float) -> StageReport:
    report.input_unchanged = True
    report.counts.unchanged = rows
    report.seconds = time.perf_counter() - started
    return report


@serialized("normalize")
def normalize_partition(
    store: IndexStore,
    partition: DescriptorPartition,
    context: NormalizationContext,
    chunk_size: int,
    only_ids: Iterable[int] | None = None,
    observe: RowObserver | None = None,
) -> StageReport:
    """Normalize the raw rows whose input hash changed. A whole pass whose input (the catalog
    fingerprint under these rules) is what the last whole pass consumed reads nothing; else
    the raw hashes are compared first and only changed rows are read in full."""
    report = StageReport("normalize", partition.key)
    if only_ids is not None:
        only_ids = frozenset(only_ids)
        report.scoped_ids = len(only_ids)
    started = time.perf_counter()
    resource_type = partition.resource_type
    token = None
    if only_ids is None:
        token = normalize_token(store.recorded_fingerprint(partition), context)
        current = store.current_stage_rows(partition, NORMALIZE, token, normalized_descriptors)
        if current is not None:
            report.quarantined = store.count_quarantined(partition.key, "normalize")
            return _unchanged(report, current, started)
    pages = _stage_pages(
        store, raw_descriptors, partition, chunk_size, only_ids, ["resource_id", "raw_hash"]
    )
    for span, keys, scope in pages:
        with store.engine.begin() as conn:
            existing = within(
                store.existing_hashes(
                    conn, normalized_descriptors, "input_hash", resource_type, span
                ),
                scope,
            )
            hashes = {int(k["resource_id"]): input_hash(k["raw_hash"], context) for k in keys}
            todo_ids = [i for i, h in hashes.items() if existing.get(i) != h]
            every = scope is None and len(todo_ids) == len(keys)
            todo = store.rows_to_redo(conn, raw_descriptors, resource_type, span, todo_ids, every)
            todo = [r for r in todo if int(r["resource_id"]) in hashes]  # none added since
            records, refused = normalize_rows(resource_type, todo, context)
            rejections = [r for r in refused if r.stage == "normalize"]
            fields = [r for r in refused if r.stage == "field"]  # published without them
            rows = _stored_normalized_rows(resource_type, records, hashes)
            skipped = set(hashes) - set(todo_ids)
            counts = store.sync_chunk(
                conn,
                normalized_descriptors,
                "input_hash",
                resource_type,
                span,
                rows,
                keep_ids=skipped | {r.resource_id for r in rejections},
                existing=existing,
            )
            stale = refused_updates(
                conn, normalized_descriptors, "input_hash", resource_type, rows, existing
            )
            for stage, found in (("normalize", rejections), ("field", fields)):
                store.record_rejections(
                    conn, partition, stage, span, found, resolved_ids=set(todo_ids)
                )
        if observe is not None:
            observe(rows)
        counts.read = len(keys)
        counts.unchanged += len(skipped)
        counts.updated -= stale
        report.stale += stale
        report.counts.add(counts)
        report.rejected += len(rejections)
        report.fields_dropped += len(fields)
        report.chunks += 1
    _record_token(store, partition, NORMALIZE, token, normalized_descriptors, report)
    report.quarantined = store.count_quarantined(partition.key, "normalize")
    report.seconds = time.perf_counter() - started
    return report


# ---------------------------------------------------------------- published index


@serialized("publish")
def publish_partition(
    store: IndexStore,
    partition: DescriptorPartition,
    chunk_size: int,
    table_name: str = PUBLISHED_TABLE,
    only_ids: Iterable[int] | None = None,
    observe: RowObserver | None = None,
) -> StageReport:
    """Publish the partition's documents in one transaction: readers see before or after.

    Only rows whose normalized hash (or the document builder's version) changed since they
    were published are read in full and rebuilt; a no-change rerun reads two hash columns.
    """
    report = StageReport("publish", partition.key)
    if only_ids is not None:
        only_ids = frozenset(only_ids)
        report.scoped_ids = len(only_ids)
    started = time.perf_counter()
    resource_type = partition.resource_type
    target = store.index_table(table_name)
    token = None
    if only_ids is None:
        token = publish_token(store.stage_token(partition, NORMALIZE), table_name)
        current = store.current_stage_rows(partition, PUBLISH, token, target)
        if current is not None:
            return _unchanged(report, current, started)
    with store.engine.begin() as conn:
        for span, keys, scope in _stage_pages(
            store,
            normalized_descriptors,
            partition,
            chunk_size,
            only_ids,
            columns=["resource_id", "content_hash"],
            conn=conn,
        ):
            existing = within(
                store.existing_hashes(conn, target, "input_hash", resource_type, span), scope
            )
            wanted = {int(k["resource_id"]): publish_hash(k["content_hash"]) for k in keys}
            todo = [i for i, h in wanted.items() if existing.get(i) != h]
            documents = []
            withdrawn = 0
            every = scope is None and len(todo) == len(keys)
            redo = store.rows_to_redo(
                conn, normalized_descriptors, resource_type, span, todo, every
            )
            for stored in redo:
                document = document_from_stored(resource_type, stored)
                if document is None:
                    withdrawn += int(stored["resource_id"]) in existing  # taken out this run
                else:
                    documents.append(document)
            now = datetime.now(UTC)
            for document in documents:
                document["published_at"] = now
            counts = store.sync_chunk(
                conn,
                target,
                "input_hash",
                resource_type,
                span,
                documents,
                keep_ids=set(wanted) - set(todo),
                existing=existing,
            )
            stale = refused_updates(conn, target, "input_hash", resource_type, documents, existing)
            if observe is not None:
                observe(documents)
            counts.read = len(wanted)
            counts.unchanged = len(wanted) - len(todo)
            counts.updated -= stale
            report.stale += stale
            report.counts.add(counts)
            report.withdrawn += withdrawn
            report.chunks += 1
    _record_token(store, partition, PUBLISH, token, target, report)
    report.seconds = time.perf_counter() - started
    return report
