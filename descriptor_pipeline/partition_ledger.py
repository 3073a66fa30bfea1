"""Per-partition bookkeeping next to the stage tables: quarantine, fingerprints, stage tokens,
baselines, and the per-partition read reconciliation compares the catalog with.

`IndexStore` inherits these methods; they live apart because they are records *about* the
partitions (why a row was rejected, what a catalog range looked like, the last profile that
passed), not the diff-and-write of the rows themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson
import pandas as pd
import sqlalchemy as sa

from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.rejections import Rejection
from descriptor_pipeline.store_engine import dialect_insert, id_in, in_span
from descriptor_pipeline.tables import (
    descriptor_index,
    quality_profiles,
    quarantine,
    range_fingerprints,
    raw_descriptors,
    stage_tokens,
)


class PartitionLedger:
    """Mixin of `IndexStore`: needs its `engine` and `_now` clock."""

    engine: sa.Engine
    _now: Callable[[], datetime]

    # ---------------------------------------------------------------- range fingerprints

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
            rows = self._partition_rows(conn, raw_descriptors, partition)
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
                        raw_rows=self._partition_rows(conn, raw_descriptors, partition),
                        recorded_at=datetime.now(UTC),
                    )
                )

    def recorded_fingerprint(self, partition: DescriptorPartition) -> str | None:
        """The catalog fingerprint of the partition's last whole-range raw sync (None: none, or
        a dialect without fingerprints)."""
        table = range_fingerprints
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(table.c.fingerprint).where(table.c.partition_key == partition.key)
            ).scalar()

    # ---------------------------------------------------------------- stage tokens

    @staticmethod
    def _token_key(partition: DescriptorPartition, stage: str) -> sa.ColumnElement[bool]:
        t = stage_tokens
        return sa.and_(
            t.c.resource_type == partition.resource_type,
            t.c.id_first == partition.id_range.first,
            t.c.id_last == partition.id_range.last,
            t.c.stage == stage,
        )

    def _partition_rows(
        self, conn: sa.Connection, table: sa.Table, partition: DescriptorPartition
    ) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(table)
            .where(in_span(table, partition.resource_type, partition.id_range))
        )
        return int(conn.execute(query).scalar() or 0)

    def current_stage_rows(
        self, partition: DescriptorPartition, stage: str, token: str | None, table: sa.Table
    ) -> int | None:
        """The rows the stage's table holds for the partition if the stage last consumed
        exactly this input in a whole pass and the table still holds the rows it left then (a
        truncated or hand-edited table is not current); else None."""
        if token is None:
            return None
        with self.engine.connect() as conn:
            stored = conn.execute(
                sa.select(stage_tokens.c.token, stage_tokens.c.rows).where(
                    self._token_key(partition, stage)
                )
            ).first()
            if stored is None or stored.token != token:
                return None
            rows = self._partition_rows(conn, table, partition)
        return rows if rows == stored.rows else None

    def stage_token(self, partition: DescriptorPartition, stage: str) -> str | None:
        """The input token the stage last recorded for the partition."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(stage_tokens.c.token).where(self._token_key(partition, stage))
            ).scalar()

    def record_stage_token(
        self, partition: DescriptorPartition, stage: str, token: str | None, table: sa.Table
    ) -> None:
        """After a whole-partition pass of the stage: what it consumed (None forgets it)."""
        with self.engine.begin() as conn:
            conn.execute(stage_tokens.delete().where(self._token_key(partition, stage)))
            if token is not None:
                conn.execute(
                    stage_tokens.insert().values(
                        resource_type=partition.resource_type,
                        id_first=partition.id_range.first,
                        id_last=partition.id_range.last,
                        stage=stage,
                        token=token,
                        rows=self._partition_rows(conn, table, partition),
                        recorded_at=datetime.now(UTC),
                    )
                )

    def forget_stage_tokens(self, conn: sa.Connection, resource_type: str, span: IdRange) -> None:
        """Rows of the span were changed outside a whole-partition pass (invalidated for a
        redo): the ranges holding them are no longer known to be current."""
        t = stage_tokens
        conn.execute(
            t.delete().where(
                t.c.resource_type == resource_type,
                t.c.id_first <= span.last,
                t.c.id_last >= span.first,
            )
        )

    # ---------------------------------------------------------------- reconciliation

    def reconcile_view(
        self, partition: DescriptorPartition
    ) -> tuple[dict[int, str], dict[int, tuple[str, str]], set[int]]:
        """What reconciliation compares the catalog with, read on one connection: the raw
        rows' `raw_hash` by id, the index rows' (content_hash, normalization_version) by id,
        and the ids quarantined by any stage, each within the partition's id range."""

        def in_partition(table: sa.Table) -> sa.ColumnElement[bool]:
            return in_span(table, partition.resource_type, partition.id_range)

        raw_t, index_t, quarantine_t = raw_descriptors, descriptor_index, quarantine
        with self.engine.connect() as conn:
            raw = dict(
                conn.execute(
                    sa.select(raw_t.c.resource_id, raw_t.c.raw_hash).where(in_partition(raw_t))
                ).all()
            )
            index = {
                int(i): (h, v)
                for i, h, v in conn.execute(
                    sa.select(
                        index_t.c.resource_id,
                        index_t.c.content_hash,
                        index_t.c.normalization_version,
                    ).where(in_partition(index_t))
                )
            }
            quarantined = set(
                conn.execute(
                    sa.select(quarantine_t.c.resource_id).where(in_partition(quarantine_t))
                ).scalars()
            )
        return raw, index, quarantined

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
            stmt = dialect_insert(self.engine)(q)
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
        clear = sa.and_(in_span(q, partition.resource_type, span), q.c.stage == stage)
        if current:
            clear = sa.and_(clear, q.c.resource_id.not_in(sorted(current)))
        if resolved_ids is not None:
            if not resolved_ids:
                return
            clear = sa.and_(clear, id_in(q.c.resource_id, resolved_ids, conn.dialect.name))
        conn.execute(q.delete().where(clear))

    def quarantined_ids(
        self, conn: sa.Connection, resource_type: str, stage: str, span: IdRange
    ) -> set[int]:
        """Ids of the span one stage holds in quarantine."""
        query = sa.select(quarantine.c.resource_id).where(
            in_span(quarantine, resource_type, span), quarantine.c.stage == stage
        )
        return {int(r[0]) for r in conn.execute(query)}

    def count_quarantined(self, partition_key: str, stage: str) -> int:
        """How many of the partition's rows one stage holds in quarantine."""
        query = (
            sa.select(sa.func.count())
            .select_from(quarantine)
            .where(quarantine.c.partition_key == partition_key, quarantine.c.stage == stage)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def quarantine_rows(self, partition_key: str | None = None) -> pd.DataFrame:
        """Quarantined rows (of one partition, or all) in key order."""
        query = sa.select(quarantine).order_by(quarantine.c.resource_type, quarantine.c.resource_id)
        if partition_key is not None:
            query = query.where(quarantine.c.partition_key == partition_key)
        with self.engine.connect() as conn:
            return pd.read_sql(query, conn)

    # ---------------------------------------------------------------- drift baselines

    def load_baseline(self, partition_key: str) -> dict[str, float] | None:
        """The profile recorded by the last run whose normalized rows passed the critical suite."""
        query = sa.select(quality_profiles.c.profile).where(
            quality_profiles.c.partition_key == partition_key
        )
        with self.engine.connect() as conn:
            text = conn.execute(query).scalar()
        return orjson.loads(text) if text else None

    def save_baseline(self, partition_key: str, run_id: str, values: dict[str, float]) -> None:
        """Make `values` the partition's baseline (one row per partition, replaced)."""
        table = quality_profiles
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(table.c.partition_key == partition_key))
            conn.execute(
                table.insert().values(
                    partition_key=partition_key,
                    run_id=run_id,
                    profile=orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode(),
                    recorded_at=datetime.now(UTC),
                )
            )
