"""Async refresh as plain functions: change detection, the refresh queue, requests, reconciliation.

The sensors and schedules in `defs/` only wire these to Dagster; nothing here imports dagster, so
the cursor math and the queue's batching are testable (and usable from a CLI) alone.

Two tables live next to the index (created by `IndexStore.migrate()` via the shared metadata):

- `descriptor_refresh_queue`: resources that must be re-indexed although their own `updated_at`
  did not move (their document embeds a changed resource, an operator asked, or reconciliation
  found them stale). Append-only: `refresh_queue_sensor` reads it after the sequence number in its
  Dagster cursor and requests runs with deterministic run keys, so a tick that dies before its
  runs exist is evaluated again with the same cursor, and nothing is lost or launched twice.
- `descriptor_refresh_requests`: the public way for another service to ask for a reindex:
  `INSERT INTO descriptor_refresh_requests (resource_type, resource_id, requested_by,
  requested_at, status) VALUES ('artist', 42, 'cms', now(), 'pending')`.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.celery_routing import celery_tags
from descriptor_pipeline.id_ranges import RESOURCE_TYPES, DescriptorPartition, IdRange
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.normalization import NORMALIZATION_VERSION
from descriptor_pipeline.tables import (
    descriptor_index,
    metadata,
    normalized_descriptors,
    quarantine,
    raw_descriptors,
)

# ---------------------------------------------------------------- run tags (plain strings)

TAG_MODE = "descriptor/refresh_mode"
TAG_LANE = "descriptor/lane"  # "fresh" (small, latency-bound) or "bulk" (whole catalog)
BULK_MODES = frozenset({"full", "reconcile"})
# when one queued partition holds rows for several reasons, the run is tagged with the first
QUEUE_REASONS = ("targeted", "replay", "fanout", "reconcile")


TAG_IDS = "descriptor/ids"
MAX_SCOPED_IDS = 200  # more changed rows than this in one partition: refresh the whole range


def scope_tags(ids: Iterable[int]) -> dict[str, str]:
    """Tell the run which ids changed, so it reads and writes only those (empty: all)."""
    unique = sorted({int(i) for i in ids})
    if not unique or len(unique) > MAX_SCOPED_IDS:
        return {}
    return {TAG_IDS: ",".join(map(str, unique))}


def parse_scope(tags: Mapping[str, str]) -> frozenset[int] | None:
    """The ids a run is scoped to, or None for the whole partition."""
    value = tags.get(TAG_IDS, "").strip()
    if not value:
        return None
    try:
        return frozenset(int(part) for part in value.split(","))
    except ValueError:
        raise ValueError(
            f"run tag {TAG_IDS} must be comma-separated ids, got {value[:80]!r}"
        ) from None


def run_tags(mode: str, **extra: str) -> dict[str, str]:
    """Tags every refresh run carries: the run coordinator limits concurrency by the lane
    (and by `dagster/partition/resource_type`, which Dagster sets on partitioned runs); with
    the Celery executor the lane also picks the queue (`celery_routing`)."""
    lane = "bulk" if mode in BULK_MODES else "fresh"
    return {TAG_MODE: mode, TAG_LANE: lane, **celery_tags(lane, mode), **extra}


@dataclass(frozen=True)
class RefreshSettings:
    """Bounds per sensor tick (a tick has ~60 s) and the incremental safety window."""

    safety_window: timedelta = timedelta(minutes=5)
    max_changes_per_type: int = 5000  # forward rows read per resource type per tick
    max_window_rows: int = 20_000  # rows of the safety window re-read per type per tick
    max_seen: int = 20_000  # (id, updated_at) pairs kept in the cursor per type
    queue_rows_per_tick: int = 5000
    queue_partitions_per_tick: int = 8
    requests_per_tick: int = 1000


DEFAULT_SETTINGS = RefreshSettings()

# ---------------------------------------------------------------- tables

refresh_queue = sa.Table(
    "descriptor_refresh_queue",
    metadata,
    # append-only: refresh_queue_sensor's cursor is the last seq it turned into run requests
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("resource_type", sa.String(16), nullable=False),
    sa.Column("resource_id", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(16), nullable=False),
    sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,  # never reuse a seq, even after the table was pruned empty
)

refresh_requests = sa.Table(
    "descriptor_refresh_requests",
    metadata,
    sa.Column(
        "request_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("resource_type", sa.String(16), nullable=False),
    sa.Column("resource_id", sa.BigInteger, nullable=False),
    sa.Column("requested_by", sa.String(128)),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("detail", sa.Text),
    sa.Column("processed_at", sa.DateTime(timezone=True)),
)
sa.Index("descriptor_refresh_requests_status", refresh_requests.c.status)


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: Any) -> datetime | None:
    """Catalog timestamps as aware UTC (SQLite hands back naive values: they are UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ---------------------------------------------------------------- id ranges -> partitions


class RangeLookup:
    """Which registered id range holds an id (ranges come from the Dagster instance)."""

    def __init__(self, range_keys: Iterable[str]) -> None:
        self.ranges = sorted(IdRange.parse(k) for k in range_keys)
        self._firsts = [r.first for r in self.ranges]

    def range_of(self, resource_id: int) -> IdRange | None:
        i = bisect.bisect_right(self._firsts, resource_id) - 1
        if i >= 0 and resource_id in self.ranges[i]:
            return self.ranges[i]
        return None

    def partitions(
        self, resource_type: str, ids: Iterable[int]
    ) -> tuple[dict[DescriptorPartition, list[int]], list[int]]:
        """Ids grouped by partition, and the ids no registered range covers yet."""
        out: dict[DescriptorPartition, list[int]] = {}
        uncovered: list[int] = []
        for resource_id in ids:
            id_range = self.range_of(int(resource_id))
            if id_range is None:
                uncovered.append(int(resource_id))
            else:
                out.setdefault(DescriptorPartition(resource_type, id_range), []).append(
                    int(resource_id)
                )
        return out, uncovered


# ---------------------------------------------------------------- incremental change detection


@dataclass
class TypePosition:
    """Keyset position (updated_at, id) already scanned, and the pairs seen inside the window."""

    ts: datetime
    last_id: int
    seen: set[tuple[int, str]] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "ts": self.ts.isoformat(),
            "id": self.last_id,
            "seen": sorted([i, t] for i, t in self.seen),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TypePosition:
        ts = _utc(data["ts"])
        assert ts is not None
        return cls(ts, int(data["id"]), {(int(i), str(t)) for i, t in data.get("seen", [])})


@dataclass
class IncrementalCursor:
    """The incremental sensor's persisted state: one position per resource type."""

    positions: dict[str, TypePosition] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"v": 1, "types": {t: p.to_json() for t, p in sorted(self.positions.items())}},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> IncrementalCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls({t: TypePosition.from_json(p) for t, p in data.get("types", {}).items()})


@dataclass(frozen=True)
class Change:
    resource_type: str
    resource_id: int
    updated_at: str  # ISO, UTC
    late: bool  # found inside the safety window, behind the high-water mark


def _stamp(value: Any) -> str:
    ts = _utc(value)
    assert ts is not None
    return ts.isoformat()


def _columns(source: CatalogSource, resource_type: str) -> tuple[sa.Table, Any, Any]:
    table = source.resource_table(resource_type)
    cfg = source.config.resource(resource_type)
    return table, table.c[cfg.id_column], table.c[cfg.updated_at_column]


def bootstrap_position(
    source: CatalogSource, resource_type: str, settings: RefreshSettings = DEFAULT_SETTINGS
) -> TypePosition | None:
    """Start at the catalog's newest row: what exists already is the full build's work.

    The rows inside the window behind it are marked seen, so they are not taken for late
    commits on the next tick. None when the table is empty (the scan then starts at the epoch).
    """
    _, id_col, ts_col = _columns(source, resource_type)
    with source.engine.connect() as conn:
        newest = conn.execute(
            sa.select(ts_col, id_col)
            .where(ts_col.is_not(None))
            .order_by(ts_col.desc(), id_col.desc())
            .limit(1)
        ).first()
        if newest is None:
            return None
        ts = _utc(newest[0])
        assert ts is not None
        window = conn.execute(
            sa.select(id_col, ts_col)
            .where(ts_col >= ts - settings.safety_window)
            .order_by(ts_col.desc(), id_col.desc())
            .limit(settings.max_seen)
        ).all()
    return TypePosition(ts, int(newest[1]), {(int(i), _stamp(t)) for i, t in window})


def scan_changes(
    source: CatalogSource,
    resource_type: str,
    position: TypePosition | None,
    settings: RefreshSettings = DEFAULT_SETTINGS,
) -> tuple[list[Change], TypePosition | None]:
    """Rows changed since `position`: bounded forward keyset page + late commits in the window.

    The high-water mark moves only as far as the rows actually read, so a burst larger than
    `max_changes_per_type` is worked off over several ticks. A row whose transaction commits
    after the mark passed its `updated_at` is found if it is at most `safety_window` older than
    the mark; the (id, updated_at) pairs already seen inside the window are skipped.
    """
    _, id_col, ts_col = _columns(source, resource_type)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    pos = position or TypePosition(epoch, -1)
    after = sa.or_(ts_col > pos.ts, sa.and_(ts_col == pos.ts, id_col > pos.last_id))
    with source.engine.connect() as conn:
        forward = conn.execute(
            sa.select(id_col, ts_col)
            .where(after)
            .order_by(ts_col, id_col)
            .limit(settings.max_changes_per_type)
        ).all()
        window: Sequence[Any] = []
        if position is not None:
            window = conn.execute(
                sa.select(id_col, ts_col)
                .where(ts_col >= pos.ts - settings.safety_window, sa.not_(after))
                .order_by(ts_col.desc(), id_col.desc())
                .limit(settings.max_window_rows)
            ).all()
    changes: list[Change] = []
    seen = set(pos.seen)
    for rows, late in ((window, True), (forward, False)):
        for resource_id, ts in rows:
            pair = (int(resource_id), _stamp(ts))
            if pair in seen:
                continue
            seen.add(pair)
            changes.append(Change(resource_type, pair[0], pair[1], late))
    if forward:
        new_ts, new_id = _utc(forward[-1][1]), int(forward[-1][0])
        assert new_ts is not None
    else:
        new_ts, new_id = pos.ts, pos.last_id
    if position is None and not forward:
        return changes, None
    horizon = (new_ts - settings.safety_window).isoformat()
    kept = sorted((p for p in seen if p[1] >= horizon), key=lambda p: p[1], reverse=True)
    # over the cap, the oldest pairs are forgotten: at worst a late re-read causes rework
    return changes, TypePosition(new_ts, new_id, set(kept[: settings.max_seen]))


def change_digest(items: Iterable[Any]) -> str:
    """A short digest of a change set: run keys must differ per request (Dagster de-dups)."""
    digest = hashlib.sha1(usedforsecurity=False)
    for item in sorted(str(i) for i in items):
        digest.update(item.encode())
        digest.update(b"\x1f")
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------- linked-resource fan-out


def dependants_of(
    source: CatalogSource, resource_type: str, ids: Sequence[int]
) -> dict[str, set[int]]:
    """Resources whose documents embed the given ones: M2M links plus a genre's child genres."""
    out = source.dependants(resource_type, list(ids))
    parent_column = source.config.genre_parent_column
    if resource_type == "genre" and parent_column and ids:
        table, id_col, _ = _columns(source, "genre")
        with source.engine.connect() as conn:
            children = conn.execute(
                sa.select(id_col).where(table.c[parent_column].in_(list(ids)))
            ).scalars()
            out.setdefault("genre", set()).update(int(i) for i in children)
    return {t: set(v) for t, v in out.items() if v}


# ---------------------------------------------------------------- the refresh queue


def enqueue(
    store: IndexStore,
    items: Mapping[str, Iterable[int]],
    reason: str,
    now: datetime | None = None,
    conn: sa.Connection | None = None,
) -> int:
    """Append resources to re-index. A resource queued twice is refreshed twice at worst: the
    second run finds nothing changed by hash and writes nothing."""
    now = now or _now()
    rows = [
        {
            "resource_type": resource_type,
            "resource_id": int(resource_id),
            "reason": reason,
            "enqueued_at": now,
        }
        for resource_type, ids in items.items()
        for resource_id in sorted(set(ids))
    ]
    if not rows:
        return 0
    if conn is not None:
        _append(conn, rows)
    else:
        with store.engine.begin() as own:
            _append(own, rows)
    return len(rows)


def _append(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert with commit order equal to seq order, which the sensor's cursor relies on.

    PostgreSQL hands out sequence values before commit, so two concurrent writers could commit
    seq 11 before seq 10, and a reader at 11 would skip 10 for good. Writers therefore take a
    lock that only other writers wait for (plain reads go on). SQLite has one writer anyway.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(f"LOCK TABLE {refresh_queue.name} IN SHARE ROW EXCLUSIVE MODE"))
    for start in range(0, len(rows), 5000):
        conn.execute(refresh_queue.insert(), rows[start : start + 5000])


@dataclass(frozen=True)
class QueueBatch:
    """One partition's queued rows between two sequence numbers: one run request."""

    partition: DescriptorPartition
    reason: str
    first_seq: int
    last_seq: int
    ids: tuple[int, ...]

    @property
    def run_key(self) -> str:
        """Deterministic: a tick evaluated again after a crash asks for the same runs, and
        Dagster drops a run_key it has seen. A batch that grew since has a new key."""
        return f"queue:{self.partition.key}:{self.first_seq}-{self.last_seq}"


@dataclass
class QueueRead:
    batches: list[QueueBatch]
    cursor: int  # the last seq consumed: the next read starts after it
    uncovered: int = 0  # rows whose id no registered range holds (the growth run covers them)


def read_queue(
    store: IndexStore, ranges: RangeLookup, after: int, settings: RefreshSettings = DEFAULT_SETTINGS
) -> QueueRead:
    """Rows after `after`, in order, grouped by partition, up to `queue_partitions_per_tick`
    partitions and `queue_rows_per_tick` rows. Nothing is written: the cursor is the claim."""
    q = refresh_queue
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(q.c.seq, q.c.resource_type, q.c.resource_id, q.c.reason)
            .where(q.c.seq > after)
            .order_by(q.c.seq)
            .limit(settings.queue_rows_per_tick)
        ).all()
    grouped: dict[DescriptorPartition, list[tuple[int, int, str]]] = {}
    cursor, uncovered = after, 0
    for seq, resource_type, resource_id, reason in rows:
        id_range = ranges.range_of(int(resource_id))
        if id_range is not None:
            partition = DescriptorPartition(resource_type, id_range)
            if partition not in grouped and len(grouped) >= settings.queue_partitions_per_tick:
                break  # the next tick starts here
            grouped.setdefault(partition, []).append((int(seq), int(resource_id), reason))
        else:
            uncovered += 1
        cursor = int(seq)
    batches = []
    for partition, items in grouped.items():
        reasons = {reason for _, _, reason in items}
        batches.append(
            QueueBatch(
                partition,
                next((r for r in QUEUE_REASONS if r in reasons), "fanout"),
                items[0][0],
                items[-1][0],
                tuple(sorted({i for _, i, _ in items})),
            )
        )
    return QueueRead(batches, cursor, uncovered)


def prune_queue(store: IndexStore, through: int) -> int:
    """Delete rows up to a cursor Dagster has committed: their runs exist."""
    with store.engine.begin() as conn:
        result = conn.execute(refresh_queue.delete().where(refresh_queue.c.seq <= through))
    return int(result.rowcount or 0)


def queue_depth(store: IndexStore, after: int = 0) -> dict[str, int]:
    """Queued rows per resource type after a cursor (0: all rows still in the table)."""
    q = refresh_queue
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(q.c.resource_type, sa.func.count())
            .where(q.c.seq > after)
            .group_by(q.c.resource_type)
        ).all()
    return {t: int(n) for t, n in rows}


# ---------------------------------------------------------------- targeted reindex


def split_known_ids(
    source: CatalogSource, resource_type: str, ids: Iterable[int]
) -> tuple[list[int], list[int]]:
    """(ids present in the catalog, ids that are not). Raises on an unknown resource type."""
    if resource_type not in RESOURCE_TYPES:
        raise ValueError(
            f"unknown resource type {resource_type!r}; expected one of {', '.join(RESOURCE_TYPES)}"
        )
    wanted = sorted({int(i) for i in ids})
    _, id_col, _ = _columns(source, resource_type)
    known: set[int] = set()
    with source.engine.connect() as conn:
        for start in range(0, len(wanted), 1000):
            batch = wanted[start : start + 1000]
            known.update(
                int(i) for i in conn.execute(sa.select(id_col).where(id_col.in_(batch))).scalars()
            )
    return [i for i in wanted if i in known], [i for i in wanted if i not in known]


def submit_request(
    store: IndexStore, resource_type: str, ids: Iterable[int], requested_by: str = "api"
) -> int:
    """What another service does (in SQL or through this function) to ask for a reindex."""
    now = _now()
    rows = [
        {
            "resource_type": resource_type,
            "resource_id": int(i),
            "requested_by": requested_by,
            "requested_at": now,
            "status": "pending",
        }
        for i in ids
    ]
    if rows:
        with store.engine.begin() as conn:
            conn.execute(refresh_requests.insert(), rows)
    return len(rows)


@dataclass
class IntakeReport:
    queued: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


def intake_requests(
    source: CatalogSource, store: IndexStore, settings: RefreshSettings = DEFAULT_SETTINGS
) -> IntakeReport:
    """Move pending requests into the queue; unknown types or ids are marked `rejected` with
    the reason, so the requester can read why instead of the sensor failing."""
    r = refresh_requests
    report = IntakeReport()
    with store.engine.connect() as conn:
        pending = conn.execute(
            sa.select(r.c.request_id, r.c.resource_type, r.c.resource_id)
            .where(r.c.status == "pending")
            .order_by(r.c.request_id)
            .limit(settings.requests_per_tick)
        ).all()
    if not pending:
        return report
    by_type: dict[str, list[tuple[int, int]]] = {}
    for request_id, resource_type, resource_id in pending:
        by_type.setdefault(resource_type, []).append((int(request_id), int(resource_id)))
    now = _now()
    updates: list[dict[str, Any]] = []
    to_queue: dict[str, list[int]] = {}
    for resource_type, items in by_type.items():
        if resource_type not in RESOURCE_TYPES:
            detail = f"unknown resource type {resource_type!r}"
            updates += [{"rid": rid, "st": "rejected", "detail": detail} for rid, _ in items]
            report.reasons.append(detail)
            continue
        known, unknown = split_known_ids(source, resource_type, [i for _, i in items])
        unknown_set = set(unknown)
        if unknown:
            report.reasons.append(f"no {resource_type} with id {', '.join(map(str, unknown))}")
        for rid, resource_id in items:
            if resource_id in unknown_set:
                detail = f"no {resource_type} with id {resource_id} in the catalog"
                updates.append({"rid": rid, "st": "rejected", "detail": detail})
            else:
                updates.append({"rid": rid, "st": "queued", "detail": None})
        to_queue[resource_type] = known
    with store.engine.begin() as conn:
        enqueue(store, to_queue, "targeted", now=now, conn=conn)
        conn.execute(
            r.update()
            .where(r.c.request_id == sa.bindparam("rid"))
            .values(status=sa.bindparam("st"), detail=sa.bindparam("detail"), processed_at=now),
            updates,
        )
    report.queued = sum(1 for u in updates if u["st"] == "queued")
    report.rejected = sum(1 for u in updates if u["st"] == "rejected")
    return report


# ---------------------------------------------------------------- reconciliation


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
        catalog_ids.update(int(i) for i in chunk.rows["resource_id"])
        catalog_hash.update({int(r["resource_id"]): r["raw_hash"] for r in good})
        del rejected  # quarantined on purpose: not something to repair
    rid = partition.id_range

    def in_partition(table: sa.Table) -> Any:
        return sa.and_(
            table.c.resource_type == partition.resource_type,
            table.c.resource_id.between(rid.first, rid.last),
        )

    with store.engine.connect() as conn:
        raw = dict(
            conn.execute(
                sa.select(raw_descriptors.c.resource_id, raw_descriptors.c.raw_hash).where(
                    in_partition(raw_descriptors)
                )
            ).all()
        )
        index = {
            int(i): (h, v)
            for i, h, v in conn.execute(
                sa.select(
                    descriptor_index.c.resource_id,
                    descriptor_index.c.content_hash,
                    descriptor_index.c.normalization_version,
                ).where(in_partition(descriptor_index))
            )
        }
        quarantined = set(
            conn.execute(
                sa.select(quarantine.c.resource_id).where(in_partition(quarantine))
            ).scalars()
        )
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
