"""The raw stage: catalog rows -> `raw_descriptors`, each JSON column parse-checked.

Commits per chunk (a crash loses at most one chunk; the rerun skips what is stored by hash). A
whole-range run first compares the catalog range's fingerprint and reads nothing when it matches.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from descriptor_pipeline.catalog import CatalogChunk, CatalogSource
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.partition_lock import serialized
from descriptor_pipeline.rejections import Rejection
from descriptor_pipeline.schema import SOURCE_COLUMNS
from descriptor_pipeline.stages import RowObserver, StageReport, scoped_ids, within
from descriptor_pipeline.store_engine import refused_updates
from descriptor_pipeline.tables import raw_descriptors
from descriptor_pipeline.values import is_missing

MAX_SOURCE_BYTES = 512 * 1024  # one JSON column larger than this is quarantined, not parsed
HASHED_COLUMNS = ("name", *SOURCE_COLUMNS, "links")  # updated_at alone is not a change


def raw_hash(row: dict[str, Any]) -> str:
    """The row's change hash: name, sources and links (`updated_at` alone is not a change)."""
    digest = hashlib.sha256()
    for column in HASHED_COLUMNS:
        digest.update((row.get(column) or "").encode())
        digest.update(b"\x1f")
    return digest.hexdigest()


def _text_problem(resource_id: int, column: str, value: Any) -> Rejection | None:
    """What no later stage or database can take: a value that is not text (a BLOB), text
    that is not valid UTF-8, or a NUL (PostgreSQL refuses it in text and in JSONB)."""
    if value is None:
        return None
    if not isinstance(value, str):
        return Rejection(
            resource_id,
            "raw",
            f"type:{column}",
            f"{column} must be text, got {type(value).__name__}",
            repr(value)[:200],
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return Rejection(
            resource_id,
            "raw",
            f"encoding:{column}",
            f"{column} is not valid UTF-8",
            value.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
        )
    if "\x00" in value or (column != "name" and "\\u0000" in value):
        return Rejection(
            resource_id, "raw", f"nul:{column}", f"{column} holds a NUL character", value
        )
    return None


def _id_problem(resource_id: int) -> Rejection | None:
    """Catalog ids start at 1: a row below that is read by the first range (`IdRange.floor`)
    only to be quarantined here, so that it is seen and counted instead of silently lost."""
    if resource_id >= 1:
        return None
    return Rejection(
        resource_id,
        "raw",
        "id_sign:id",
        f"id {resource_id} is not positive: catalog ids start at 1 and the index keys "
        "resources by positive ids, so this row cannot be published; give it a positive id "
        "in the catalog (it then leaves quarantine on the next run of its range)",
        str(resource_id),
    )


def _timestamp_problem(resource_id: int, value: Any) -> Rejection | None:
    if value is None:
        return None
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return Rejection(
            resource_id,
            "raw",
            "timestamp:updated_at",
            f"updated_at is not a timestamp: {str(value)[:80]!r}",
            str(value),
        )
    return None


def validate_raw(
    rows: list[dict[str, Any]], stored: dict[int, str] | None = None
) -> tuple[list[dict[str, Any]], list[Rejection]]:
    """Check every value a later stage or database could choke on; a bad row is rejected with
    its rule and reason, not dropped, and never fails the rows beside it.

    A row whose hash equals the stored one was validated when it was stored: not parsed again.
    """
    stored = stored or {}
    good: list[dict[str, Any]] = []
    rejected: list[Rejection] = []
    for row in rows:
        resource_id = int(row["resource_id"])
        for column in ("name", *SOURCE_COLUMNS, "source_updated_at"):
            if is_missing(row.get(column)):
                row[column] = None
        problem = next(
            (
                p
                for p in (
                    _id_problem(resource_id),
                    *(_text_problem(resource_id, c, row[c]) for c in ("name", *SOURCE_COLUMNS)),
                    _timestamp_problem(resource_id, row["source_updated_at"]),
                )
                if p is not None
            ),
            None,
        )
        if problem is not None:
            rejected.append(problem.clipped())
            continue
        row["raw_hash"] = raw_hash(row)
        if stored.get(resource_id) == row["raw_hash"]:
            good.append(row)
            continue
        for column in SOURCE_COLUMNS:
            text = row.get(column)
            if text is None:
                continue
            size = len(text.encode())
            if size > MAX_SOURCE_BYTES:
                problem = Rejection(
                    resource_id,
                    "raw",
                    f"oversized:{column}",
                    f"{column} is {size} bytes (limit {MAX_SOURCE_BYTES})",
                    text,
                )
                break
            try:
                parsed = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                problem = Rejection(
                    resource_id,
                    "raw",
                    f"json_parse:{column}",
                    f"{column} is not valid JSON: {exc}",
                    text,
                )
                break
            if parsed is not None and not isinstance(parsed, dict):
                problem = Rejection(
                    resource_id,
                    "raw",
                    f"json_type:{column}",
                    f"{column} must be a JSON object, got {type(parsed).__name__}",
                    text,
                )
                break
        if problem is not None:
            rejected.append(problem.clipped())
            continue
        good.append(row)
    return good, rejected


def _catalog_chunks(
    source: CatalogSource,
    partition: DescriptorPartition,
    chunk_size: int,
    only_ids: Iterable[int] | None,
) -> Iterator[tuple[CatalogChunk, set[int] | None]]:
    """The whole range in keyset pages, or only the given ids (a scoped refresh)."""
    if only_ids is None:
        for chunk in source.iter_chunks(partition.resource_type, partition.id_range, chunk_size):
            yield chunk, None
        return
    for ids in scoped_ids(partition, only_ids, chunk_size):
        rows = source.rows_for_ids(partition.resource_type, ids)
        yield CatalogChunk(IdRange(ids[0], ids[-1]), rows), set(ids)


@serialized("raw")
def extract_raw(
    source: CatalogSource,
    store: IndexStore,
    partition: DescriptorPartition,
    chunk_size: int,
    only_ids: Iterable[int] | None = None,
    observe: RowObserver | None = None,
) -> StageReport:
    """Catalog rows -> raw_descriptors. With `only_ids`, just those rows are read and synced
    (an id the catalog no longer has is deleted); otherwise the whole id range."""
    report = StageReport("raw", partition.key)
    report.catalog_without = source.config.absent(partition.resource_type)
    if only_ids is not None:
        only_ids = frozenset(only_ids)
        report.scoped_ids = len(only_ids)
    started = time.perf_counter()
    # taken before reading: a change that lands during the read changes the next fingerprint
    fingerprint = (
        source.fingerprint(partition.resource_type, partition.id_range)
        if only_ids is None
        else None
    )
    if fingerprint is not None:
        unchanged = store.unchanged_rows(partition, fingerprint)
        if unchanged is not None:
            report.catalog_unchanged = True
            report.counts.unchanged = unchanged
            report.quarantined = store.count_quarantined(partition.key, "raw")
            report.seconds = time.perf_counter() - started
            return report
    for chunk, scope in _catalog_chunks(source, partition, chunk_size, only_ids):
        with store.engine.begin() as conn:
            stored = within(
                store.existing_hashes(
                    conn, raw_descriptors, "raw_hash", partition.resource_type, chunk.span
                ),
                scope,
            )
            rows, rejections = validate_raw(chunk.rows, stored)
            now = datetime.now(UTC)
            for row in rows:
                row["resource_type"] = partition.resource_type
                row["extracted_at"] = now
            # a row that turned bad keeps its last good raw version; quarantine says why
            counts = store.sync_chunk(
                conn,
                raw_descriptors,
                "raw_hash",
                partition.resource_type,
                chunk.span,
                rows,
                keep_ids={r.resource_id for r in rejections},
                existing=stored,
            )
            stale = refused_updates(
                conn, raw_descriptors, "raw_hash", partition.resource_type, rows, stored
            )
            store.record_rejections(
                conn, partition, "raw", chunk.span, rejections, resolved_ids=scope
            )
        if observe is not None:
            observe([r for r in rows if stored.get(int(r["resource_id"])) != r["raw_hash"]])
        counts.read += len(rejections)
        counts.updated -= stale
        report.stale += stale
        report.counts.add(counts)
        report.rejected += len(rejections)
        report.chunks += 1
    if only_ids is None:
        # an update `not_older` refused kept an older row than this fingerprint describes
        store.record_fingerprint(partition, fingerprint if report.stale == 0 else None)
    elif report.counts.written:
        # the range no longer is what one fingerprint describes (`freshness.py`)
        store.record_fingerprint(partition, None)
    report.quarantined = store.count_quarantined(partition.key, "raw")
    report.seconds = time.perf_counter() - started
    return report
