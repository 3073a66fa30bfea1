"""What PostgreSQL does differently when writing: COPY-based upserts and the shadow swap.

Only what really differs per dialect lives here; the diff-by-hash logic is shared in
`index_store.IndexStore.sync_chunk`, and tsvector search in `search`.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql

from descriptor_pipeline.store_engine import not_older
from descriptor_pipeline.tables import PUBLISHED_TABLE, stage_tokens

_VOCABULARY = importlib.import_module(
    "descriptor_pipeline.migrations.versions.0010_search_vocabulary"
)
READER_ROLE = "descriptor_reader"
SHADOW_TABLE = "descriptor_index_shadow"
PREVIOUS_TABLE = "descriptor_index_previous"


def copy_upsert(
    conn: sa.Connection,
    table: sa.Table,
    hash_column: str,
    rows: Sequence[dict[str, Any]],
    all_new: bool = False,
) -> None:
    """COPY the changed rows into a temp staging table, then one INSERT … ON CONFLICT.

    The WHERE on the hash makes the upsert a no-op for a row another writer already brought
    up to date, so no tuple is rewritten without a change. `all_new`: the table holds none of
    these rows (read in this transaction, under the partition's stage lock, so no other
    writer can add them): COPY straight into the table (a first build's every chunk).
    """
    columns = [c.name for c in table.columns if c.name != "doc_id"]
    stage = f"stage_{table.name}"
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    with conn.connection.driver_connection.cursor() as cur:
        if not all_new:
            cur.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS "
                    "SELECT {cols} FROM {table} WITH NO DATA"
                ).format(stage=sql.Identifier(stage), table=sql.Identifier(table.name), cols=cols)
            )
            cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(stage)))
        target = table.name if all_new else stage
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(target), cols)
        with cur.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row([row.get(c) for c in columns])
    if all_new:
        return
    staged = sa.table(stage, *[sa.column(c) for c in columns])
    stmt = postgresql.insert(table).from_select(columns, sa.select(*staged.c))
    stmt = stmt.on_conflict_do_update(
        index_elements=["resource_type", "resource_id"],
        set_={c: stmt.excluded[c] for c in columns if c not in ("resource_type", "resource_id")},
        where=sa.and_(
            table.c[hash_column].is_distinct_from(stmt.excluded[hash_column]),
            not_older(table, stmt.excluded),
        ),
    )
    conn.execute(stmt)


# ---------------------------------------------------------------- shadow build, swap, rollback

SWAP_TABLE = "descriptor_index_swap"  # the live table's name for the moment of a rollback
_INDEX_DEFINITION = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (USING .+)$")


def _renamed(name: str, table: str, to_table: str) -> str:
    """An index's or trigger's name for another table: the table's name prefix swapped (a
    name without it gains the new one), so every table keeps one stable set of names."""
    suffix = name[len(table) :] if name.startswith(table) else f"_{name}"
    return f"{to_table}{suffix}"


def _indexes(conn: sa.Connection, table: str) -> list[tuple[str, str, str | None]]:
    """Each index of `table`: its name, its definition, and for the index of a primary key
    or unique constraint, the constraint's definition."""
    query = sa.text(
        "SELECT i.relname, pg_get_indexdef(i.oid), pg_get_constraintdef(c.oid) "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.contype IN ('p', 'u') "
        "WHERE x.indrelid = to_regclass(:t) ORDER BY i.relname"
    )
    return [(r[0], r[1], r[2]) for r in conn.execute(query, {"t": table})]


def _rename_all(conn: sa.Connection, table: str, to_table: str) -> None:
    """Rename `table` with its indexes (a constraint's goes with it) and triggers."""
    for name, _, _ in _indexes(conn, table):
        new = _renamed(name, table, to_table)
        conn.exec_driver_sql(f'ALTER INDEX "{name}" RENAME TO "{new}"')
    triggers = sa.text(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t) AND NOT tgisinternal"
    )
    for (name,) in conn.execute(triggers, {"t": table}).all():
        new = _renamed(name, table, to_table)
        conn.exec_driver_sql(f'ALTER TRIGGER "{name}" ON {table} RENAME TO "{new}"')
    conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {to_table}")


def create_shadow(engine: sa.Engine) -> None:
    """An empty table shaped like the published one, generated tsvector included, with only
    its keys' indexes: the GIN, trigram and name indexes are built once, whole, by
    `build_shadow_indexes` (a rebuild's COPYs no longer update them row by row)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SHADOW_TABLE}")
        conn.exec_driver_sql(
            f"CREATE TABLE {SHADOW_TABLE} (LIKE {PUBLISHED_TABLE} INCLUDING ALL EXCLUDING INDEXES)"
        )
        for name, _, constraint in _indexes(conn, PUBLISHED_TABLE):
            if constraint is not None:
                new = _renamed(name, PUBLISHED_TABLE, SHADOW_TABLE)
                conn.exec_driver_sql(
                    f'ALTER TABLE {SHADOW_TABLE} ADD CONSTRAINT "{new}" {constraint}'
                )
        # same owner as the live table (the writer role), so it can take over doc_id's sequence
        owner = conn.execute(
            sa.text("SELECT tableowner FROM pg_tables WHERE tablename = :t"),
            {"t": PUBLISHED_TABLE},
        ).scalar()
        conn.exec_driver_sql(f'ALTER TABLE {SHADOW_TABLE} OWNER TO "{owner}"')
        # LIKE copies no triggers: the search vocabulary learns the shadow's words too, by the
        # triggers migration 0010 puts on the live table
        for statement in _VOCABULARY.postgres_word_triggers(SHADOW_TABLE):
            conn.exec_driver_sql(statement)


def build_shadow_indexes(engine: sa.Engine) -> list[str]:
    """Build on the shadow each index the live table has and the shadow lacks, one
    transaction each (an interrupted build resumes where it stopped); the names built.

    Readers are not blocked: only the shadow is locked. A GIN index built whole from a
    filled table costs a fraction of keeping it up to date through every COPY of a rebuild
    (docs/operations.md, "Shadow build")."""
    built: list[str] = []
    with engine.connect() as conn:
        if not _exists(conn, SHADOW_TABLE):
            raise RuntimeError(f"no {SHADOW_TABLE} to index: build one first")
        has = {name for name, _, _ in _indexes(conn, SHADOW_TABLE)}
        wanted = [
            (_renamed(name, PUBLISHED_TABLE, SHADOW_TABLE), definition)
            for name, definition, constraint in _indexes(conn, PUBLISHED_TABLE)
            if constraint is None
        ]
    for name, definition in wanted:
        if name in has:
            continue
        match = _INDEX_DEFINITION.match(definition)
        if match is None:
            raise RuntimeError(f"cannot rebuild index {name} from its definition: {definition}")
        unique, method = match.groups()
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE {unique or ""}INDEX "{name}" ON {SHADOW_TABLE} {method}')
        built.append(name)
    return built


def _exists(conn: sa.Connection, name: str) -> bool:
    return conn.execute(sa.text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar()


SWAP_LOCK_TIMEOUT = "5s"


def _lock_published(conn: sa.Connection) -> None:
    """Take the swap lock or fail fast: a queued ACCESS EXCLUSIVE request would otherwise
    block every new reader behind one long-running query."""
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
    conn.exec_driver_sql(f"LOCK TABLE {PUBLISHED_TABLE} IN ACCESS EXCLUSIVE MODE")


def _give_sequence_to(conn: sa.Connection, table: str) -> None:
    """doc_id's sequence is shared by live, shadow and previous tables (LIKE copies the default);
    it must belong to the table that becomes live, or dropping the old one later fails."""
    sequence = conn.execute(
        sa.text("SELECT pg_get_serial_sequence(:t, 'doc_id')"), {"t": PUBLISHED_TABLE}
    ).scalar()
    if sequence:
        conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY {table}.doc_id")


def _forget_publish_tokens(conn: sa.Connection) -> None:
    """The table now under the published name is not the one the publish tokens describe
    (`freshness.py`): every partition is republished by hash on its next whole run."""
    conn.execute(stage_tokens.delete().where(stage_tokens.c.stage == "publish"))


def swap_in_shadow(engine: sa.Engine) -> None:
    """Publish the shadow atomically; the old index is kept as `descriptor_index_previous`.

    The shadow's missing indexes are built first, before any lock on the live table. Readers
    then block only for the renames (an ACCESS EXCLUSIVE lock held for milliseconds) and see
    the new table under the same name, with the same index and trigger names (migrations
    refer to them); the reader role is granted before the swap. If a long query holds the
    table for more than SWAP_LOCK_TIMEOUT the swap fails (retry it).
    """
    build_shadow_indexes(engine)
    with engine.begin() as conn:
        if not _exists(conn, SHADOW_TABLE):
            raise RuntimeError(f"no {SHADOW_TABLE} to swap in: build one first")
        conn.exec_driver_sql(f"GRANT SELECT ON {SHADOW_TABLE} TO {READER_ROLE}")
        _lock_published(conn)
        _give_sequence_to(conn, SHADOW_TABLE)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {PREVIOUS_TABLE}")
        _rename_all(conn, PUBLISHED_TABLE, PREVIOUS_TABLE)
        _rename_all(conn, SHADOW_TABLE, PUBLISHED_TABLE)
        _forget_publish_tokens(conn)


def rollback_swap(engine: sa.Engine) -> None:
    """Put the previous index back (and keep the rolled-back one as previous)."""
    with engine.begin() as conn:
        if not _exists(conn, PREVIOUS_TABLE):
            raise RuntimeError(f"no {PREVIOUS_TABLE} to roll back to")
        _lock_published(conn)
        _give_sequence_to(conn, PREVIOUS_TABLE)
        _rename_all(conn, PUBLISHED_TABLE, SWAP_TABLE)
        _rename_all(conn, PREVIOUS_TABLE, PUBLISHED_TABLE)
        _rename_all(conn, SWAP_TABLE, PREVIOUS_TABLE)
        _forget_publish_tokens(conn)
