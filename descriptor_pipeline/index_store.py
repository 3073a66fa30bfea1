"""The pipeline's own tables and the published index.

Writes are idempotent: each stage diffs a chunk against what is stored (by key and hash) and
writes only rows that are new or changed, deleting rows that vanished from the catalog. Search
is dialect-specific (SQLite FTS5 here; Postgres tsvector in `index_store_postgres`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.rejections import Rejection

metadata = sa.MetaData()
JSONText = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _key_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.BigInteger, nullable=False),
    ]


raw_descriptors = sa.Table(
    "raw_descriptors",
    metadata,
    *_key_columns(),
    sa.Column("source_updated_at", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("spotify_data", sa.Text),
    sa.Column("enrichment_data", sa.Text),
    sa.Column("custom_data", sa.Text),
    sa.Column("links", sa.Text),
    sa.Column("raw_hash", sa.String(64), nullable=False),
    sa.Column("extracted_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("resource_type", "resource_id"),
)

normalized_descriptors = sa.Table(
    "normalized_descriptors",
    metadata,
    *_key_columns(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("fields", JSONText, nullable=False),  # typed values per the canonical schema
    sa.Column("provenance", JSONText, nullable=False),
    sa.Column("hidden", sa.Boolean, nullable=False),
    sa.Column("blocked", sa.Boolean, nullable=False),
    sa.Column("source_updated_at", sa.Text),
    sa.Column("normalization_version", sa.String(32), nullable=False),
    sa.Column("raw_hash", sa.String(64), nullable=False),
    sa.Column("input_hash", sa.String(64), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("normalized_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("resource_type", "resource_id"),
)

descriptor_index = sa.Table(
    "descriptor_index",
    metadata,
    sa.Column("doc_id", BigId, primary_key=True, autoincrement=True),
    *_key_columns(),
    sa.Column("document_key", sa.String(40), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("display_text", sa.Text, nullable=False),
    sa.Column("search_name", sa.Text, nullable=False),
    sa.Column("search_aliases", sa.Text, nullable=False),
    sa.Column("search_facets", sa.Text, nullable=False),
    sa.Column("search_description", sa.Text, nullable=False),
    sa.Column("document", JSONText, nullable=False),
    sa.Column("hidden", sa.Boolean, nullable=False),
    sa.Column("normalization_version", sa.String(32), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("input_hash", sa.String(64)),  # normalized content hash + document version
    sa.Column("source_updated_at", sa.Text),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("resource_type", "resource_id", name="descriptor_index_key"),
)

quarantine = sa.Table(
    "descriptor_quarantine",
    metadata,
    *_key_columns(),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("partition_key", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw_value", sa.Text),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("resource_type", "resource_id", "stage"),
)
sa.Index("descriptor_quarantine_partition", quarantine.c.partition_key, quarantine.c.stage)

# What each partition's catalog range looked like when its raw rows were last fully synced.
range_fingerprints = sa.Table(
    "descriptor_range_fingerprint",
    metadata,
    sa.Column("partition_key", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("raw_rows", sa.Integer, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

# bm25 column weights, in the order of the FTS columns: name > aliases > facets > description
_SQLITE_SEARCH = sa.text("""
    SELECT d.resource_type, d.resource_id, d.document_key, d.name, d.display_text,
           -bm25(descriptor_index_fts, 10.0, 5.0, 2.0, 1.0) AS rank
    FROM descriptor_index_fts JOIN descriptor_index d ON d.doc_id = descriptor_index_fts.rowid
    WHERE descriptor_index_fts MATCH :query
      AND (:include_hidden OR NOT d.hidden)
      AND (:resource_type IS NULL OR d.resource_type = :resource_type)
    ORDER BY (d.search_name = :exact COLLATE NOCASE) DESC, rank DESC LIMIT :limit""")


PUBLISHED_TABLE = "descriptor_index"
_shadow_metadata = sa.MetaData()
MIGRATIONS = Path(__file__).parent / "migrations"


def run_migrations(engine: sa.Engine, revision: str = "head") -> str:
    """Upgrade the index database to `revision`; returns the version it is at."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": "descriptor_pipeline_version"}
        )
        version = context.get_current_revision() or ""
    _check_every_table_is_migrated(engine)
    return version


def _check_every_table_is_migrated(engine: sa.Engine) -> None:
    """A table declared in code but created by no migration is a bug: say so at once."""
    existing = set(sa.inspect(engine).get_table_names())
    missing = sorted(name for name in metadata.tables if name not in existing)
    if missing:
        raise RuntimeError(f"tables declared in code have no migration: {missing}")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the UI and search read while a partition commits; busy_timeout makes concurrent
    # partition runs wait for the write lock instead of failing.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> sa.Engine:
    """SQLite with WAL, or PostgreSQL through psycopg 3 (COPY) whatever driver the URL names."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql"):
        # JSONB columns decode with orjson: the stdlib decoder was 17-22% of a full backfill
        kwargs.setdefault("json_deserializer", orjson.loads)
    engine = sa.create_engine(url, pool_pre_ping=True, **kwargs)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_connect)
    return engine


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


@dataclass(frozen=True)
class SearchHit:
    resource_type: str
    resource_id: int
    document_key: str
    name: str
    display_text: str
    rank: float

    @classmethod
    def from_row(cls, row: Any) -> SearchHit:
        """One result row of either dialect's search query."""
        return cls(
            row.resource_type,
            int(row.resource_id),
            row.document_key,
            row.name,
            row.display_text,
            float(row.rank),
        )


_TOKEN = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """A safe FTS5 query: each word quoted (no operator injection), the last one a prefix."""
    tokens = _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
    if not tokens:
        return None
    quoted = [f'"{t}"' for t in tokens]
    quoted[-1] += "*"
    return " ".join(quoted)


def exact_text(text: str) -> str:
    """The query as a name would be stored, so an exact name match can rank first."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@dataclass
class IndexStore:
    """The pipeline's tables in one database (SQLite file or Postgres)."""

    engine: sa.Engine
    _now: Any = field(default=lambda: datetime.now(UTC))

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
        if name not in _shadow_metadata.tables:
            descriptor_index.to_metadata(_shadow_metadata, name=name)
        return _shadow_metadata.tables[name]

    # ---------------------------------------------------------------- generic diff-and-write

    def _insert(self) -> Any:
        return sqlite.insert if self.dialect == "sqlite" else postgresql.insert

    def existing_hashes(
        self,
        conn: sa.Connection,
        table: sa.Table,
        hash_column: str,
        resource_type: str,
        span: IdRange,
    ) -> dict[int, str]:
        query = sa.select(table.c.resource_id, table.c[hash_column]).where(
            table.c.resource_type == resource_type,
            table.c.resource_id.between(span.first, span.last),
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

                copy_upsert(conn, table, hash_column, changed)
            else:
                self._upsert(conn, table, hash_column, changed)
        vanished = [i for i in existing if i not in seen and i not in keep_ids]
        if vanished:
            conn.execute(
                table.delete().where(
                    table.c.resource_type == resource_type, table.c.resource_id.in_(vanished)
                )
            )
            counts.deleted += len(vanished)
        return counts

    def _upsert(
        self, conn: sa.Connection, table: sa.Table, hash_column: str, rows: Sequence[dict[str, Any]]
    ) -> None:
        stmt = self._insert()(table)
        key = ["resource_type", "resource_id"]
        update = {
            c.name: stmt.excluded[c.name] for c in table.columns if c.name not in (*key, "doc_id")
        }
        stmt = stmt.on_conflict_do_update(
            index_elements=key,
            set_=update,
            # IS DISTINCT FROM: a NULL (invalidated) hash must not block the rewrite
            where=table.c[hash_column].is_distinct_from(stmt.excluded[hash_column]),
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
                records = [dict(r) for r in conn.execute(query).mappings()]
            else:
                with self.engine.connect() as own:
                    records = [dict(r) for r in own.execute(query).mappings()]
            last = (
                int(records[-1]["resource_id"])
                if len(records) == chunk_size
                else partition.id_range.last
            )
            yield IdRange(after + 1, last), records
            after = last

    def rows_by_id(
        self, conn: sa.Connection, table: sa.Table, resource_type: str, ids: Sequence[int]
    ) -> list[dict[str, Any]]:
        if not ids:
            return []
        query = (
            sa.select(table)
            .where(table.c.resource_type == resource_type, table.c.resource_id.in_(list(ids)))
            .order_by(table.c.resource_id)
        )
        return [dict(r) for r in conn.execute(query).mappings()]

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
                .where(table.c.resource_type == resource_type, table.c.resource_id.in_(ids))
                .values({hash_column: forgotten})
            )
        return int(result.rowcount or 0)

    # ---------------------------------------------------------------- range fingerprints

    def _raw_rows(self, conn: sa.Connection, partition: DescriptorPartition) -> int:
        span = partition.id_range
        query = (
            sa.select(sa.func.count())
            .select_from(raw_descriptors)
            .where(
                raw_descriptors.c.resource_type == partition.resource_type,
                raw_descriptors.c.resource_id.between(span.first, span.last),
            )
        )
        return int(conn.execute(query).scalar() or 0)

    def unchanged_rows(self, partition: DescriptorPartition, fingerprint: str) -> int | None:
        """The partition's raw row count if its catalog range still has this fingerprint and its
        raw rows are all there (a truncated stage table must be refilled); else None."""
        table = range_fingerprints
        with self.engine.connect() as conn:
            stored = conn.execute(
                sa.select(table.c.fingerprint, table.c.raw_rows).where(
                    table.c.partition_key == partition.key
                )
            ).first()
            if stored is None or stored.fingerprint != fingerprint:
                return None
            rows = self._raw_rows(conn, partition)
        return rows if rows == stored.raw_rows else None

    def record_fingerprint(self, partition: DescriptorPartition, fingerprint: str | None) -> None:
        """After a whole-range sync: remember the range (None forgets it)."""
        table = range_fingerprints
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.partition_key == partition.key))
            if fingerprint is not None:
                conn.execute(
                    table.insert().values(
                        partition_key=partition.key,
                        fingerprint=fingerprint,
                        raw_rows=self._raw_rows(conn, partition),
                        recorded_at=datetime.now(UTC),
                    )
                )

    # ---------------------------------------------------------------- quarantine

    def record_rejections(
        self,
        conn: sa.Connection,
        partition: DescriptorPartition,
        stage: str,
        span: IdRange,
        rejections: Sequence[Rejection],
        resolved_ids: set[int] | None = None,
    ) -> None:
        """Upsert this span's rejections; rows of the span that now pass leave quarantine.

        `resolved_ids` limits clean-up to the rows this run really re-examined (a stage that
        skipped an unchanged row must not clear its earlier rejection).
        """
        now = self._now()
        current = {r.resource_id for r in rejections}
        q = quarantine
        if rejections:
            stmt = self._insert()(q)
            stmt = stmt.on_conflict_do_update(
                index_elements=["resource_type", "resource_id", "stage"],
                set_={
                    "partition_key": stmt.excluded.partition_key,
                    "rule": stmt.excluded.rule,
                    "reason": stmt.excluded.reason,
                    "raw_value": stmt.excluded.raw_value,
                    "last_seen": stmt.excluded.last_seen,
                    "attempts": q.c.attempts + 1,
                },
            )
            conn.execute(
                stmt,
                [
                    {
                        "resource_type": partition.resource_type,
                        "resource_id": r.resource_id,
                        "stage": stage,
                        "partition_key": partition.key,
                        "rule": r.rule,
                        "reason": r.reason,
                        "raw_value": r.raw_value,
                        "first_seen": now,
                        "last_seen": now,
                        "attempts": 1,
                    }
                    for r in rejections
                ],
            )
        clear = sa.and_(
            q.c.resource_type == partition.resource_type,
            q.c.stage == stage,
            q.c.resource_id.between(span.first, span.last),
        )
        if current:
            clear = sa.and_(clear, q.c.resource_id.not_in(sorted(current)))
        if resolved_ids is not None:
            if not resolved_ids:
                return
            clear = sa.and_(clear, q.c.resource_id.in_(sorted(resolved_ids)))
        conn.execute(q.delete().where(clear))

    def quarantined_ids(
        self, conn: sa.Connection, resource_type: str, stage: str, span: IdRange
    ) -> set[int]:
        query = sa.select(quarantine.c.resource_id).where(
            quarantine.c.resource_type == resource_type,
            quarantine.c.stage == stage,
            quarantine.c.resource_id.between(span.first, span.last),
        )
        return {int(r[0]) for r in conn.execute(query)}

    def quarantine_rows(self, partition_key: str | None = None) -> pd.DataFrame:
        query = sa.select(quarantine).order_by(quarantine.c.resource_type, quarantine.c.resource_id)
        if partition_key is not None:
            query = query.where(quarantine.c.partition_key == partition_key)
        with self.engine.connect() as conn:
            return pd.read_sql(query, conn)

    # ---------------------------------------------------------------- reading the index

    def search(
        self,
        text: str,
        limit: int = 10,
        resource_type: str | None = None,
        include_hidden: bool = False,
    ) -> list[SearchHit]:
        if self.dialect != "sqlite":
            from descriptor_pipeline.index_store_postgres import search_postgres

            return search_postgres(self.engine, text, limit, resource_type, include_hidden)
        query = fts_query(text)
        if query is None:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(
                _SQLITE_SEARCH,
                {
                    "query": query,
                    "exact": exact_text(text),
                    "limit": limit,
                    "resource_type": resource_type,
                    "include_hidden": include_hidden,
                },
            ).all()
        return [SearchHit.from_row(r) for r in rows]

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
