"""What PostgreSQL does differently: COPY-based writes, tsvector search, shadow swap.

Only what really differs per dialect lives here; the diff-by-hash logic is shared in
`index_store.IndexStore.sync_chunk`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.dialects import postgresql

from descriptor_pipeline.index_store import PUBLISHED_TABLE, SearchHit, exact_text

READER_ROLE = "descriptor_reader"
SHADOW_TABLE = "descriptor_index_shadow"
PREVIOUS_TABLE = "descriptor_index_previous"
_TOKEN = re.compile(r"\w+", re.UNICODE)


def copy_upsert(
    conn: sa.Connection, table: sa.Table, hash_column: str, rows: Sequence[dict[str, Any]]
) -> None:
    """COPY the changed rows into a temp staging table, then one INSERT … ON CONFLICT.

    The WHERE on the hash makes the upsert a no-op for a row another writer already brought
    up to date, so no tuple is rewritten without a change.
    """
    columns = [c.name for c in table.columns if c.name != "doc_id"]
    stage = f"stage_{table.name}"
    driver = conn.connection.driver_connection
    with driver.cursor() as cur:
        cur.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS "
                "SELECT {cols} FROM {table} WITH NO DATA"
            ).format(
                stage=sql.Identifier(stage),
                table=sql.Identifier(table.name),
                cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
            )
        )
        cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(stage)))
        with cur.copy(
            sql.SQL("COPY {stage} ({cols}) FROM STDIN").format(
                stage=sql.Identifier(stage), cols=sql.SQL(", ").join(map(sql.Identifier, columns))
            )
        ) as copy:
            for row in rows:
                copy.write_row([row.get(c) for c in columns])
    staged = sa.table(stage, *[sa.column(c) for c in columns])
    stmt = postgresql.insert(table).from_select(columns, sa.select(*staged.c))
    stmt = stmt.on_conflict_do_update(
        index_elements=["resource_type", "resource_id"],
        set_={c: stmt.excluded[c] for c in columns if c not in ("resource_type", "resource_id")},
        where=table.c[hash_column].is_distinct_from(stmt.excluded[hash_column]),
    )
    conn.execute(stmt)


MIN_PREFIX = 3  # "t:*" would match a third of a catalog: short last words match whole
RANK_CANDIDATES = 1000  # ranking cost is bounded: broad queries rank this many matches


def tsquery(text: str) -> str | None:
    """Words as quoted lexemes ANDed, the last a prefix: no operator from the user survives."""
    tokens = _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
    if not tokens:
        return None
    parts = [f"'{t}'" for t in tokens]
    if len(tokens[-1]) >= MIN_PREFIX:
        parts[-1] += ":*"
    return " & ".join(parts)


# Candidates: up to RANK_CANDIDATES full-text matches (GIN) plus exact name matches (btree on
# lower(name), so "The The" is found even when "the" matches half the catalog); only they
# are ranked.
_SEARCH = sa.text("""
    WITH q AS (SELECT to_tsquery('descriptor_search', :query) AS query),
    candidates AS (
        (SELECT d.doc_id FROM descriptor_index d, q
         WHERE d.search_vector @@ q.query
           AND (:include_hidden OR NOT d.hidden)
           AND (CAST(:resource_type AS text) IS NULL OR d.resource_type = :resource_type)
         LIMIT :candidates)
        UNION
        (SELECT d.doc_id FROM descriptor_index d
         WHERE lower(d.name) = lower(:exact)
           AND (:include_hidden OR NOT d.hidden)
           AND (CAST(:resource_type AS text) IS NULL OR d.resource_type = :resource_type)
         LIMIT :limit))
    SELECT d.resource_type, d.resource_id, d.document_key, d.name, d.display_text,
           ts_rank_cd(d.search_vector, q.query) AS rank
    FROM descriptor_index d JOIN candidates c ON c.doc_id = d.doc_id, q
    ORDER BY lower(d.name) = lower(:exact) DESC, rank DESC LIMIT :limit""")
# No word matched: a fuzzy name lookup through the trigram index (typos, missing spaces).
_FUZZY = sa.text("""
    SELECT d.resource_type, d.resource_id, d.document_key, d.name, d.display_text,
           similarity(d.name, :exact) AS rank
    FROM descriptor_index d
    WHERE d.name % :exact
      AND (:include_hidden OR NOT d.hidden)
      AND (CAST(:resource_type AS text) IS NULL OR d.resource_type = :resource_type)
    ORDER BY rank DESC LIMIT :limit""")


def search_postgres(
    engine: sa.Engine, text: str, limit: int, resource_type: str | None, include_hidden: bool
) -> list[SearchHit]:
    query = tsquery(text)
    if query is None:
        return []
    exact = exact_text(text)
    params = {
        "query": query,
        "exact": exact,
        "limit": limit,
        "candidates": RANK_CANDIDATES,
        "resource_type": resource_type,
        "include_hidden": include_hidden,
    }
    with engine.connect() as conn:
        rows = conn.execute(_SEARCH, params).all() or conn.execute(_FUZZY, params).all()
    return [SearchHit.from_row(r) for r in rows]


# ---------------------------------------------------------------- shadow build, swap, rollback


def create_shadow(engine: sa.Engine) -> None:
    """An empty table shaped like the published one (indexes, generated tsvector included)."""
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {SHADOW_TABLE}")
        conn.exec_driver_sql(f"CREATE TABLE {SHADOW_TABLE} (LIKE {PUBLISHED_TABLE} INCLUDING ALL)")
        # same owner as the live table (the writer role), so it can take over doc_id's sequence
        owner = conn.execute(
            sa.text("SELECT tableowner FROM pg_tables WHERE tablename = :t"),
            {"t": PUBLISHED_TABLE},
        ).scalar()
        conn.exec_driver_sql(f'ALTER TABLE {SHADOW_TABLE} OWNER TO "{owner}"')


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


def swap_in_shadow(engine: sa.Engine) -> None:
    """Publish the shadow atomically; the old index is kept as `descriptor_index_previous`.

    Readers block only for the renames (an ACCESS EXCLUSIVE lock held for milliseconds) and
    then see the new table under the same name; the reader role is granted before the swap.
    If a long query holds the table for more than SWAP_LOCK_TIMEOUT the swap fails (retry it).
    """
    with engine.begin() as conn:
        if not _exists(conn, SHADOW_TABLE):
            raise RuntimeError(f"no {SHADOW_TABLE} to swap in: build one first")
        conn.exec_driver_sql(f"GRANT SELECT ON {SHADOW_TABLE} TO {READER_ROLE}")
        _lock_published(conn)
        _give_sequence_to(conn, SHADOW_TABLE)
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {PREVIOUS_TABLE}")
        conn.exec_driver_sql(f"ALTER TABLE {PUBLISHED_TABLE} RENAME TO {PREVIOUS_TABLE}")
        conn.exec_driver_sql(f"ALTER TABLE {SHADOW_TABLE} RENAME TO {PUBLISHED_TABLE}")


def rollback_swap(engine: sa.Engine) -> None:
    """Put the previous index back (and keep the rolled-back one as previous)."""
    with engine.begin() as conn:
        if not _exists(conn, PREVIOUS_TABLE):
            raise RuntimeError(f"no {PREVIOUS_TABLE} to roll back to")
        _lock_published(conn)
        _give_sequence_to(conn, PREVIOUS_TABLE)
        conn.exec_driver_sql(f"ALTER TABLE {PUBLISHED_TABLE} RENAME TO descriptor_index_swap")
        conn.exec_driver_sql(f"ALTER TABLE {PREVIOUS_TABLE} RENAME TO {PUBLISHED_TABLE}")
        conn.exec_driver_sql(f"ALTER TABLE descriptor_index_swap RENAME TO {PREVIOUS_TABLE}")
