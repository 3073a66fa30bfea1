"""The catalog's change queries for the refresh sensors: keyset scans on (updated_at, id), which
requested ids exist, a genre's child genres.

Read-only, SQLAlchemy Core like `catalog`: every name comes from `CatalogConfig` through
`CatalogSource`, every value is a bound parameter. Rows come back as plain tuples, timestamps as
aware UTC (`as_utc`); the cursor logic over them is `refresh.changes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from descriptor_pipeline.catalog import CatalogSource

ID_BATCH = 1000  # ids per IN list when looking ids up

RowStamp = tuple[int, datetime]  # (resource id, updated_at as aware UTC)


def as_utc(value: Any) -> datetime | None:
    """Catalog timestamps as aware UTC (SQLite hands back naive values: they are UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _columns(source: CatalogSource, resource_type: str) -> tuple[sa.Table, Any, Any]:
    table = source.resource_table(resource_type)
    cfg = source.config.resource(resource_type)
    return table, table.c[cfg.id_column], table.c[cfg.updated_at_column]


def _changes(rows: Sequence[Any]) -> list[RowStamp]:
    out = []
    for resource_id, ts in rows:
        stamp = as_utc(ts)
        assert stamp is not None
        out.append((int(resource_id), stamp))
    return out


def newest_change(
    source: CatalogSource, resource_type: str, window: timedelta, limit: int
) -> tuple[RowStamp, list[RowStamp]] | None:
    """The newest row by (updated_at, id), and the rows no older than `window` behind it,
    newest first, at most `limit` (one connection). None when no row has an updated_at.

    The type must have an updated_at column (`ResourceConfig.updated_at_column`)."""
    _, id_col, ts_col = _columns(source, resource_type)
    with source.engine.connect() as conn:
        newest = conn.execute(
            sa.select(id_col, ts_col)
            .where(ts_col.is_not(None))
            .order_by(ts_col.desc(), id_col.desc())
            .limit(1)
        ).first()
        if newest is None:
            return None
        (mark,) = _changes([newest])
        recent = conn.execute(
            sa.select(id_col, ts_col)
            .where(ts_col >= mark[1] - window)
            .order_by(ts_col.desc(), id_col.desc())
            .limit(limit)
        ).all()
    return mark, _changes(recent)


def changes_after(
    source: CatalogSource,
    resource_type: str,
    ts: datetime,
    last_id: int,
    limit: int,
    late_since: datetime | None = None,
    late_limit: int = 0,
) -> tuple[list[RowStamp], list[RowStamp]]:
    """(forward, late), read on one connection.

    forward: the rows after the keyset mark (ts, last_id) in (updated_at, id) order, at most
    `limit`. late: when `late_since` is given, the rows at or before the mark whose updated_at
    is at least `late_since` (commits that landed behind the mark), newest first, at most
    `late_limit`; else none. The type must have an updated_at column.
    """
    _, id_col, ts_col = _columns(source, resource_type)
    after = sa.or_(ts_col > ts, sa.and_(ts_col == ts, id_col > last_id))
    with source.engine.connect() as conn:
        forward = conn.execute(
            sa.select(id_col, ts_col).where(after).order_by(ts_col, id_col).limit(limit)
        ).all()
        late: Sequence[Any] = []
        if late_since is not None:
            late = conn.execute(
                sa.select(id_col, ts_col)
                .where(ts_col >= late_since, sa.not_(after))
                .order_by(ts_col.desc(), id_col.desc())
                .limit(late_limit)
            ).all()
    return _changes(forward), _changes(late)


def existing_ids(source: CatalogSource, resource_type: str, ids: Sequence[int]) -> set[int]:
    """Which of `ids` the catalog holds, looked up ID_BATCH at a time in the order given."""
    id_col = source.resource_table(resource_type).c[source.config.resource(resource_type).id_column]
    known: set[int] = set()
    with source.engine.connect() as conn:
        for start in range(0, len(ids), ID_BATCH):
            batch = list(ids[start : start + ID_BATCH])
            known.update(
                int(i) for i in conn.execute(sa.select(id_col).where(id_col.in_(batch))).scalars()
            )
    return known


def child_genres(source: CatalogSource, parent_ids: Sequence[int]) -> set[int]:
    """Genres whose parent is one of `parent_ids` (none without `genre_parent_column`)."""
    parent_column = source.config.genre_parent_column
    if not parent_column or not parent_ids:
        return set()
    table = source.resource_table("genre")
    id_col = table.c[source.config.genre.id_column]
    with source.engine.connect() as conn:
        children = conn.execute(
            sa.select(id_col).where(table.c[parent_column].in_(list(parent_ids)))
        ).scalars()
        return {int(i) for i in children}
