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
# the names the index's tables go by, longest first: an index or trigger name made for any of
# them (by this module, or by PostgreSQL for an earlier version's shadow) is one plus a suffix
_TABLE_PREFIXES = tuple(
    sorted((PUBLISHED_TABLE, SHADOW_TABLE, PREVIOUS_TABLE, SWAP_TABLE), key=len, reverse=True)
)
MAX_NAME_BYTES = 63  # PostgreSQL cuts longer names silently, which could make two alike
_INDEX_DEFINITION = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (USING .+)$")


def _execute(conn: sa.Connection, statement: str, *names: str, tail: str = "") -> None:
    """Run `statement` in `conn`'s transaction, each `{}` filled with one of `names` quoted as
    an identifier by psycopg, then `tail` as it is (a definition read from the catalog)."""
    query = sql.SQL(statement).format(*map(sql.Identifier, names)) + sql.SQL(tail)
    with conn.connection.driver_connection.cursor() as cur:
        cur.execute(query)


def _renamed(name: str, to_table: str) -> str:
    """An index's or trigger's name for `to_table`: the table-name prefix it carries (any of
    the index's tables) replaced, a name without one prefixed. Every table keeps one set of
    names, and a name an earlier version's swap left (`descriptor_index_shadow_pkey` on the
    live table) comes back to the same form (`descriptor_index_pkey`)."""
    prefix = next((p for p in _TABLE_PREFIXES if name.startswith(p)), None)
    new = to_table + (name[len(prefix) :] if prefix else f"_{name}")
    if len(new.encode()) > MAX_NAME_BYTES:
        raise RuntimeError(f"{new!r} is over {MAX_NAME_BYTES} bytes: rename {name!r} first")
    return new


def _index_shape(definition: str) -> tuple[str, str]:
    """What an index is, less its name and table: UNIQUE or not, method, columns, options."""
    match = _INDEX_DEFINITION.match(definition)
    if match is None:
        raise RuntimeError(f"cannot read the index definition {definition!r}")
    unique, method = match.groups()
    return unique or "", method


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


def _rename_indexes(conn: sa.Connection, table: str, to_table: str) -> None:
    """Give `table`'s indexes (a constraint's goes with its index) the names of `to_table`."""
    for name, _, _ in _indexes(conn, table):
        new = _renamed(name, to_table)
        if new != name:
            _execute(conn, "ALTER INDEX {} RENAME TO {}", name, new)


def _rename_all(conn: sa.Connection, table: str, to_table: str) -> None:
    """Rename `table` with its indexes and triggers (the caller holds the table's lock)."""
    _rename_indexes(conn, table, to_table)
    triggers = sa.text(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t) AND NOT tgisinternal"
    )
    for (name,) in conn.execute(triggers, {"t": table}).all():
        new = _renamed(name, to_table)
        if new != name:
            _execute(conn, "ALTER TRIGGER {} ON {} RENAME TO {}", name, table, new)
    conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO {to_table}")


def create_shadow(engine: sa.Engine) -> None:
    """An empty table shaped like the published one, generated tsvector included, with only
    its keys' indexes: the GIN, trigram and name indexes are built once, whole, by
    `build_shadow_indexes` (a rebuild's COPYs do not update them row by row)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SHADOW_TABLE}")
        # index names are unique per schema: the previous and live tables give back any
        # shadow name an earlier version's swap left on them (renaming an index locks only it)
        for table in (PREVIOUS_TABLE, PUBLISHED_TABLE):
            if _exists(conn, table):
                _rename_indexes(conn, table, table)
        conn.exec_driver_sql(
            f"CREATE TABLE {SHADOW_TABLE} (LIKE {PUBLISHED_TABLE} INCLUDING ALL EXCLUDING INDEXES)"
        )
        for name, _, constraint in _indexes(conn, PUBLISHED_TABLE):
            if constraint is not None:
                new = _renamed(name, SHADOW_TABLE)
                statement = "ALTER TABLE {} ADD CONSTRAINT {} "
                _execute(conn, statement, SHADOW_TABLE, new, tail=constraint)
        # same owner as the live table (the writer role), so it can take over doc_id's sequence
        owner = conn.execute(
            sa.text("SELECT tableowner FROM pg_tables WHERE tablename = :t"),
            {"t": PUBLISHED_TABLE},
        ).scalar()
        _execute(conn, "ALTER TABLE {} OWNER TO {}", SHADOW_TABLE, str(owner))
        # LIKE copies no triggers: the search vocabulary learns the shadow's words too, by the
        # triggers migration 0010 puts on the live table
        for statement in _VOCABULARY.postgres_word_triggers(SHADOW_TABLE):
            conn.exec_driver_sql(statement)


def build_shadow_indexes(engine: sa.Engine) -> list[str]:
    """Build on the shadow each index of the live table the shadow has no index like (same
    uniqueness, method, columns and options, whatever its name: a shadow an earlier version
    made has them all), one transaction each, so an interrupted build resumes; the names built.

    Readers are not blocked: only the shadow is locked. Building a GIN index whole from a
    filled table replaces keeping it up to date through every COPY of the rebuild."""
    built: list[str] = []
    with engine.connect() as conn:
        if not _exists(conn, SHADOW_TABLE):
            raise RuntimeError(f"no {SHADOW_TABLE} to index: build one first")
        has = {_index_shape(definition) for _, definition, _ in _indexes(conn, SHADOW_TABLE)}
        wanted = [
            (_renamed(name, SHADOW_TABLE), _index_shape(definition))
            for name, definition, constraint in _indexes(conn, PUBLISHED_TABLE)
            if constraint is None
        ]
    for name, (unique, method) in wanted:
        if (unique, method) in has:
            continue
        with engine.begin() as conn:
            _execute(conn, f"CREATE {unique}INDEX {{}} ON {{}} ", name, SHADOW_TABLE, tail=method)
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
