"""The append-only refresh queue, `descriptor_refresh_queue`: its whole store, SQL included.

It holds resources that must be re-indexed although their own `updated_at` did not move (their
document embeds a changed resource, an operator asked, or reconciliation found them stale).
`refresh_queue_sensor` reads it after the sequence number in its Dagster cursor and requests runs
with deterministic run keys, so a tick that dies before its runs exist is evaluated again with
the same cursor, and nothing is lost or launched twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from descriptor_pipeline.catalog_changes import as_utc
from descriptor_pipeline.id_ranges import DescriptorPartition, RangeLookup
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.refresh.settings import DEFAULT_SETTINGS, RefreshSettings
from descriptor_pipeline.refresh.tags import QUEUE_REASONS
from descriptor_pipeline.tables import refresh_queue


def enqueue(
    store: IndexStore,
    items: Mapping[str, Iterable[int]],
    reason: str,
    now: datetime | None = None,
    conn: sa.Connection | None = None,
) -> int:
    """Append resources to re-index. A resource queued twice is refreshed twice at worst: the
    second run finds nothing changed by hash and writes nothing."""
    now = now or datetime.now(UTC)
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
    held: int = 0  # fan-out rows of this read left for a later tick (`hold_fanout_since`)


def _held_from(rows: Sequence[sa.Row[Any]], since: datetime | None) -> int:
    """How many rows at the end of this read wait: from the first fan-out row queued at or
    after `since`, if every row from there on is fan-out. A targeted or other row behind it is
    someone's direct request, which must not wait for fan-out: then nothing is held."""
    if since is None:
        return 0
    for n, row in enumerate(rows):
        queued_at = as_utc(row.enqueued_at) if row.reason == "fanout" else None
        if queued_at is not None and queued_at >= since:
            rest = rows[n:]
            return len(rest) if all(r.reason == "fanout" for r in rest) else 0
    return 0


def read_queue(
    store: IndexStore,
    ranges: RangeLookup,
    after: int,
    settings: RefreshSettings = DEFAULT_SETTINGS,
    hold_fanout_since: datetime | None = None,
) -> QueueRead:
    """Rows after `after`, in order, grouped by partition, up to `queue_partitions_per_tick`
    partitions and `queue_rows_per_tick` rows. Nothing is written: the cursor is the claim.

    With `hold_fanout_since`, the read stops at the first fan-out row queued at or after it
    (`_held_from`): the cursor stays before that row, so it and the fan-out behind it keep their
    order and are read by a later tick."""
    q = refresh_queue
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(q.c.seq, q.c.resource_type, q.c.resource_id, q.c.reason, q.c.enqueued_at)
            .where(q.c.seq > after)
            .order_by(q.c.seq)
            .limit(settings.queue_rows_per_tick)
        ).all()
    grouped: dict[DescriptorPartition, list[tuple[int, int, str]]] = {}
    cursor, uncovered = after, 0
    held = _held_from(rows, hold_fanout_since)
    for seq, resource_type, resource_id, reason, _ in rows[: len(rows) - held]:
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
    return QueueRead(batches, cursor, uncovered, held)


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
