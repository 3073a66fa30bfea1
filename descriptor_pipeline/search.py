"""Searching the published index: one ranking specification, implemented on both dialects.

The ranking (docs/search.md), the same on SQLite and PostgreSQL:
- candidates: documents holding every query word in any order, the last word as a prefix
  (FTS5 / tsvector; no prefix when the whole last word already gives the 1,000 candidates),
  plus exact-name matches; when they are fewer than asked and no name is or starts with the
  query, the query's unknown words are corrected against the vocabulary of names and aliases
  (one edit away, else by trigrams) and the names holding the corrected words are compared
  (SQLite: rapidfuzz; PostgreSQL: pg_trgm similarity);
- score = tier + named + text share: tier 3 when the folded name equals the folded query, 2
  when it starts with it, 1 otherwise; +0.5 for a named resource (artist, album, track) so a
  short genre row never passes an artist of the same tier; + 0.49 * r / (r + 1) where r is the
  text rank with `schema.SEARCH_WEIGHTS` per weight class (bm25 column weights / ts_rank_cd);
- similar-name candidates score 0.99 * similarity, below every document that matched all words.

The user's words reach neither query language as syntax: they are split into word characters
and quoted. On PostgreSQL the ranking lives in the SQL function `descriptor_search` (migrations
0008, 0010) that services call directly; this module calls the same function.
"""

from __future__ import annotations

import sqlalchemy as sa

from descriptor_pipeline.search_query import (
    DEFAULT_BUDGET_SECONDS,
    MAX_LIMIT,
    MAX_QUERY_CHARS,
    MAX_QUERY_WORDS,
    SearchHit,
    SearchRefused,
    clean_query,
    fts_query,
    over_budget,
    words,
)
from descriptor_pipeline.search_sqlite import search_sqlite

__all__ = [
    "DEFAULT_BUDGET_SECONDS",
    "MAX_QUERY_CHARS",
    "MAX_QUERY_WORDS",
    "SearchHit",
    "SearchRefused",
    "fts_query",
    "search",
    "search_postgres",
    "search_sqlite",
]


_POSTGRES_SEARCH = sa.text(
    "SELECT key AS document_key, type AS resource_type, id AS resource_id, name, display_text, "
    "score AS rank, matched_fields, match "
    "FROM descriptor_search(:query, :resource_type, :limit, :include_hidden)"
)


def search_postgres(
    engine: sa.Engine,
    text: str,
    limit: int,
    resource_type: str | None,
    include_hidden: bool,
    budget: float,
) -> list[SearchHit]:
    """The SQL function `descriptor_search`: the ranking services get without this package."""
    if not words(text):
        return []
    params = {
        "query": text,
        "resource_type": resource_type,
        "limit": limit,
        "include_hidden": include_hidden,
    }
    with engine.connect() as conn, conn.begin():
        conn.execute(sa.text(f"SET LOCAL statement_timeout = {max(int(budget * 1000), 1)}"))
        try:
            rows = conn.execute(_POSTGRES_SEARCH, params).all()
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == "57014":  # query_canceled
                raise over_budget(budget) from None
            raise
    return [
        SearchHit(
            r.resource_type,
            int(r.resource_id),
            r.document_key,
            r.name,
            r.display_text,
            float(r.rank),
            tuple(r.matched_fields or ()),
            r.match,
        )
        for r in rows
    ]


def search(
    engine: sa.Engine,
    text: str,
    limit: int = 10,
    resource_type: str | None = None,
    include_hidden: bool = False,
    budget: float = DEFAULT_BUDGET_SECONDS,
) -> list[SearchHit]:
    """The best `limit` published documents for `text`, by the engine's dialect, within
    `budget` seconds. Raises SearchRefused past the caps or the budget."""
    if not 1 <= limit <= MAX_LIMIT:
        raise SearchRefused(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
    run = search_sqlite if engine.dialect.name == "sqlite" else search_postgres
    return run(engine, clean_query(text), limit, resource_type, include_hidden, budget)
