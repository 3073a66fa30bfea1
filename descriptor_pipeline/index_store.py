"""The pipeline's stage tables and the published index, behind one `IndexStore`.

Writes are idempotent: each stage diffs a chunk against what is stored (by key and hash) and
writes only rows that are new or changed, deleting rows that vanished from the catalog. The
per-partition bookkeeping (quarantine, range fingerprints, drift baselines) is the
`PartitionLedger` half of the class; search is in `search`, PostgreSQL's COPY and shadow swap
in `index_store_postgres`, the table declarations in `tables`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from descriptor_pipeline import search as search_module
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.partition_ledger import PartitionLedger
from descriptor_pipeline.partition_lock import WAIT_SECONDS
from descriptor_pipeline.search import SearchHit
from descriptor_pipeline.store_engine import (
    OpenOnce,
    create_engine,
    dialect_insert,
    id_in,
    in_span,
    not_older,
    run_migrations,
)
from descriptor_pipeline.tables import (
    PUBLISHED_TABLE,
    descriptor_index,
    normalized_descriptors,
    quarantine,
    raw_descriptors,
    shadow_index_table,
)


@dataclass
class SyncCounts:
    """What one stage did to its table for a partition."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    @property
    def written(self) -> int:
        return self.inserted + self.updated + self.deleted

    def add(self, other: SyncCounts) -> None:
        for name in ("read", "inserted", "updated", "unchanged", "deleted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class IndexStore(PartitionLedger):
    """The pipeline's tables in one database (SQLite file or Postgres)."""

    engine: sa.Engine
    _now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    lock_wait: float = WAIT_SECONDS  # seconds a stage waits for its partition lock

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> str:
        """Apply the versioned migrations (alembic); safe to run any number of times."""
        return run_migrations(self.engine)

    def index_table(self, name: str = PUBLISHED_TABLE) -> sa.Table:
        """The published table, or a shadow table of the same shape for a full rebuild."""
        if name == PUBLISHED_TABLE:
            return descriptor_index
        if self.dialect != "postgresql":
            raise ValueError("shadow index tables need PostgreSQL; SQLite rebuilds in place")
        return shadow_index_table(name)

    def count_rows(self, table: sa.Table, partitions: Sequence[DescriptorPartition]) -> int:
        """Rows a stage table (or the index) holds for the partitions: `dagster/row_count`."""
        with self.engine.connect() as conn:
            return sum(self._partition_rows(conn, table, p) for p in partitions)

    # ---------------------------------------------------------------- generic diff-and-write

    def existing_hashes(
        self,
        conn: sa.Connection,
        table: sa.Table,
        hash_column: str,
        resource_type: str,
        span: IdRange,
    ) -> dict[int, str]:
        query = sa.select(table.c.resource_id, table.c[hash_column]).where(
            in_span(table, resource_type, span)
        )
        return {int(i): h for i, h in conn.execute(query)}

    def sync_chunk(
        self,
        conn: sa.Connection,
        table: sa.Table,
        hash_column: str,
        resource_type: str,
        span: IdRange,
        rows: Sequence[dict[str, Any]],
        keep_ids: set[int] | frozenset[int] = frozenset(),
        existing: dict[int, str] | None = None,
    ) -> SyncCounts:
        """Make `table` hold exactly `rows` for the span (plus `keep_ids`, left as they are)."""
        if existing is None:
            existing = self.existing_hashes(conn, table, hash_column, resource_type, span)
        counts = SyncCounts(read=len(rows))
        changed = []
        seen: set[int] = set()
        for row in rows:
            resource_id = int(row["resource_id"])
            seen.add(resource_id)
            old = existing.get(resource_id)
            if old == row[hash_column]:
                counts.unchanged += 1
                continue
            changed.append(row)
            if old is None:
                counts.inserted += 1
            else:
                counts.updated += 1
        if changed:
            if self.dialect == "postgresql":
                from descriptor_pipeline.index_store_postgres import copy_upsert

                all_new = not seen & existing.keys()  # none of the span's rows is stored
                copy_upsert(conn, table, hash_column, changed, all_new)
            else:
                self._upsert(conn, table, hash_column, changed)
        vanished = [i for i in existing if i not in seen and i not in keep_ids]
        if vanished:
            conn.execute(
                table.delete().where(
                    table.c.resource_type == resource_type,
                    id_in(table.c.resource_id, vanished, conn.dialect.name),
                )
            )
            counts.deleted += len(vanished)
        return counts

    def _upsert(
        self, conn: sa.Connection, table: sa.Table, hash_column: str, rows: Sequence[dict[str, Any]]
    ) -> None:
        stmt = dialect_insert(self.engine)(table)
        key = ["resource_type", "resource_id"]
        update = {
            c.name: stmt.excluded[c.name] for c in table.columns if c.name not in (*key, "doc_id")
        }
        stmt = stmt.on_conflict_do_update(
            index_elements=key,
            set_=update,
            # IS DISTINCT FROM: a NULL (invalidated) hash must not block the rewrite
            where=sa.and_(
                table.c[hash_column].is_distinct_from(stmt.excluded[hash_column]),
                not_older(table, stmt.excluded),
            ),
        )
        conn.execute(stmt, list(rows))

    def iter_rows(
        self,
        table: sa.Table,
        partition: DescriptorPartition,
        chunk_size: int,
        conn: sa.Connection | None = None,
        columns: Sequence[str] | None = None,
    ) -> Iterator[tuple[IdRange, pd.DataFrame]]:
        """Keyset pages of a stage table within the partition, with the span each covers."""
        for span, records in self.iter_records(table, partition, chunk_size, conn, columns):
            frame = pd.DataFrame(records, columns=list(columns or table.columns.keys()))
            yield span, frame

    def iter_records(
        self,
        table: sa.Table,
        partition: DescriptorPartition,
        chunk_size: int,
        conn: sa.Connection | None = None,
        columns: Sequence[str] | None = None,
    ) -> Iterator[tuple[IdRange, list[dict[str, Any]]]]:
        """Like iter_rows, as plain dicts: the publish path skips pandas on purpose."""
        selected = [table.c[c] for c in columns] if columns else list(table.columns)
        after = partition.id_range.first - 1
        while after < partition.id_range.last:
            query = (
                sa.select(*selected)
                .where(
                    table.c.resource_type == partition.resource_type,
                    table.c.resource_id > after,
                    table.c.resource_id <= partition.id_range.last,
                )
                .order_by(table.c.resource_id)
                .limit(chunk_size)
            )
            if conn is not None:
                records = [dict(r) for r in conn.execute(query).mappings().all()]
            else:
                with self.engine.connect() as own:
                    records = [dict(r) for r in own.execute(query).mappings().all()]
            last = (
                int(records[-1]["resource_id"])
                if len(records) == chunk_size
                else partition.id_range.last
            )
            yield IdRange(after + 1, last), records
            after = last

    def blocked_ids(self, partition: DescriptorPartition) -> list[int]:
        """The partition's normalized ids an editor blocked: the few the reconciliation counts
        as withdrawn, filtered by the database instead of sending every row's flag."""
        table = normalized_descriptors
        query = sa.select(table.c.resource_id).where(
            table.c.resource_type == partition.resource_type,
            table.c.resource_id.between(partition.id_range.first, partition.id_range.last),
            table.c.blocked.is_(True),
        )
        with self.engine.connect() as conn:
            return [int(i) for i in conn.execute(query).scalars()]

    def rows_by_id(
        self, conn: sa.Connection, table: sa.Table, resource_type: str, ids: Sequence[int]
    ) -> list[dict[str, Any]]:
        if not ids:
            return []
        query = (
            sa.select(table)
            .where(
                table.c.resource_type == resource_type,
                id_in(table.c.resource_id, ids, self.engine.dialect.name),
            )
            .order_by(table.c.resource_id)
        )
        return [dict(r) for r in conn.execute(query).mappings().all()]

    def rows_to_redo(
        self,
        conn: sa.Connection,
        table: sa.Table,
        resource_type: str,
        span: IdRange,
        ids: list[int],
        whole_span: bool,
    ) -> list[dict[str, Any]]:
        """Full rows of the ids whose input changed: by range when that is all of the span (a
        first build, a rule bump), by id otherwise (usually few or none)."""
        if not whole_span:
            return self.rows_by_id(conn, table, resource_type, ids)
        query = (
            sa.select(table)
            .where(in_span(table, resource_type, span))
            .order_by(table.c.resource_id)
        )
        return [dict(r) for r in conn.execute(query).mappings().all()]

    def occupied(self, partitions: Sequence[DescriptorPartition]) -> set[DescriptorPartition]:
        """Partitions that hold rows in any stage table (so a catalog deletion still runs)."""
        out = set()
        with self.engine.connect() as conn:
            for partition in partitions:
                for table in (raw_descriptors, descriptor_index):
                    probe = (
                        sa.select(table.c.resource_id)
                        .where(
                            table.c.resource_type == partition.resource_type,
                            table.c.resource_id.between(
                                partition.id_range.first, partition.id_range.last
                            ),
                        )
                        .limit(1)
                    )
                    if conn.execute(probe).first() is not None:
                        out.add(partition)
                        break
        return out

    def invalidate_published(self, resource_type: str, ids: Iterable[int]) -> int:
        """Forget what these documents were built from, so the next publish rebuilds them.

        Publishing skips rows whose input is unchanged; a repair of a document that is wrong
        for another reason (edited out of band, an old version) must not be skipped.
        """
        return self.invalidate(descriptor_index, "input_hash", resource_type, ids)

    def invalidate(
        self, table: sa.Table, hash_column: str, resource_type: str, ids: Iterable[int]
    ) -> int:
        """Null the diff hash of these rows so the next run of their stage redoes them.

        A stage validates only the rows it writes; rows a blocking check rejected must be
        written (and so validated) again, not skipped by an unchanged hash.
        """
        ids = sorted(ids)
        if not ids:
            return 0
        column = table.c[hash_column]
        forgotten = None if column.nullable else ""  # no real hash is empty
        with self.engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(
                    table.c.resource_type == resource_type,
                    id_in(table.c.resource_id, ids, self.engine.dialect.name),
                )
                .values({hash_column: forgotten})
            )
            self.forget_stage_tokens(conn, resource_type, IdRange(ids[0], ids[-1]))
        return int(result.rowcount or 0)

    # ---------------------------------------------------------------- reading the index

    def search(
        self,
        text: str,
        limit: int = 10,
        resource_type: str | None = None,
        include_hidden: bool = False,
        budget: float = search_module.DEFAULT_BUDGET_SECONDS,
    ) -> list[SearchHit]:
        """The best `limit` published documents for `text` (see `search.search`)."""
        return search_module.search(self.engine, text, limit, resource_type, include_hidden, budget)

    def counts(self) -> pd.DataFrame:
        """Rows per resource type in every stage table and in quarantine."""
        frames = []
        with self.engine.connect() as conn:
            for table in (raw_descriptors, normalized_descriptors, descriptor_index, quarantine):
                query = sa.select(
                    table.c.resource_type, sa.func.count().label(table.name)
                ).group_by(table.c.resource_type)
                frames.append(pd.read_sql(query, conn).set_index("resource_type"))
        return pd.concat(frames, axis=1).fillna(0).astype(int)

    def document(self, resource_type: str, resource_id: int) -> dict[str, Any] | None:
        query = sa.select(descriptor_index).where(
            descriptor_index.c.resource_type == resource_type,
            descriptor_index.c.resource_id == resource_id,
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None


@OpenOnce
def open_store(url: str) -> IndexStore:
    """The index store at `url`, migrated to the current schema; one per URL and process."""
    store = IndexStore(create_engine(url))
    store.migrate()
    return store
