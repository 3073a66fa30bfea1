"""Searching the published index on either dialect: query building, SQL, result rows.

SQLite ranks with FTS5's bm25; PostgreSQL with a tsvector (GIN) plus a trigram fallback. Both
read the user's words through the same tokenizer, so no operator from the user reaches either
query language, and both rank an exact name match first.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from descriptor_pipeline.rules import CONTROL_CHARS

WORD = re.compile(r"\w+", re.UNICODE)
MIN_PREFIX = 3  # "t:*" would match a third of a catalog: short last words match whole
RANK_CANDIDATES = 1000  # ranking cost is bounded: broad queries rank this many matches
# No request runs unbounded: a query this long or with this many words is refused before any
# SQL (4,000 ANDed words took 19 s on SQLite; 20,000 exhausted PostgreSQL's memory), and every
# search has a time budget enforced by the database (statement_timeout, a progress handler).
MAX_QUERY_CHARS = 512
MAX_QUERY_WORDS = 16
DEFAULT_BUDGET_SECONDS = 2.0


class SearchRefused(ValueError):
    """The query cannot be answered as asked: too long, too many words, or over its budget."""


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


def words(text: str) -> list[str]:
    """The query's words, compatibility-normalized and casefolded like the indexed text."""
    return WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def clean_query(text: str) -> str:
    """The query without NUL, control, zero-width or bidi characters (PostgreSQL refuses NUL in
    text; the others only hide what is asked), after the length and word caps."""
    if len(text) > MAX_QUERY_CHARS:
        raise SearchRefused(
            f"query is {len(text)} characters; at most {MAX_QUERY_CHARS} are searched"
        )
    cleaned = CONTROL_CHARS.sub(" ", text)
    if len(words(cleaned)) > MAX_QUERY_WORDS:
        raise SearchRefused(
            f"query has {len(words(cleaned))} words; at most {MAX_QUERY_WORDS} are searched"
        )
    return cleaned


def fts_query(text: str) -> str | None:
    """A safe FTS5 query: each word quoted (no operator injection), the last one a prefix."""
    tokens = words(text)
    if not tokens:
        return None
    quoted = [f'"{t}"' for t in tokens]
    quoted[-1] += "*"
    return " ".join(quoted)


def tsquery(text: str) -> str | None:
    """Words as quoted lexemes ANDed, the last a prefix: no operator from the user survives."""
    tokens = words(text)
    if not tokens:
        return None
    parts = [f"'{t}'" for t in tokens]
    if len(tokens[-1]) >= MIN_PREFIX:
        parts[-1] += ":*"
    return " & ".join(parts)


def exact_text(text: str) -> str:
    """The query as a name would be stored, so an exact name match can rank first."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


# bm25 column weights, in the order of the FTS columns: name > aliases > facets > description
_SQLITE_SEARCH = sa.text("""
    SELECT d.resource_type, d.resource_id, d.document_key, d.name, d.display_text,
           -bm25(descriptor_index_fts, 10.0, 5.0, 2.0, 1.0) AS rank
    FROM descriptor_index_fts JOIN descriptor_index d ON d.doc_id = descriptor_index_fts.rowid
    WHERE descriptor_index_fts MATCH :query
      AND (:include_hidden OR NOT d.hidden)
      AND (:resource_type IS NULL OR d.resource_type = :resource_type)
    ORDER BY (d.search_name = :exact COLLATE NOCASE) DESC, rank DESC LIMIT :limit""")

# Candidates: up to RANK_CANDIDATES full-text matches (GIN) plus exact name matches (btree on
# lower(name), so "The The" is found even when "the" matches half the catalog); only they
# are ranked.
_POSTGRES_SEARCH = sa.text("""
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
_POSTGRES_FUZZY = sa.text("""
    SELECT d.resource_type, d.resource_id, d.document_key, d.name, d.display_text,
           similarity(d.name, :exact) AS rank
    FROM descriptor_index d
    WHERE d.name % :exact
      AND (:include_hidden OR NOT d.hidden)
      AND (CAST(:resource_type AS text) IS NULL OR d.resource_type = :resource_type)
    ORDER BY rank DESC LIMIT :limit""")


def _params(
    query: str, text: str, limit: int, resource_type: str | None, include_hidden: bool
) -> dict[str, Any]:
    """The bound parameters both dialects' queries take."""
    return {
        "query": query,
        "exact": exact_text(text),
        "limit": limit,
        "resource_type": resource_type,
        "include_hidden": include_hidden,
    }


def _over_budget(budget: float) -> SearchRefused:
    return SearchRefused(f"search took longer than its {budget:g} s budget")


def search_sqlite(
    engine: sa.Engine,
    text: str,
    limit: int,
    resource_type: str | None,
    include_hidden: bool,
    budget: float,
) -> list[SearchHit]:
    query = fts_query(text)
    if query is None:
        return []
    params = _params(query, text, limit, resource_type, include_hidden)
    deadline = time.monotonic() + budget
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        # SQLite calls this every 1,000 virtual-machine steps; non-zero interrupts the statement
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 1_000)
        try:
            rows = conn.execute(_SQLITE_SEARCH, params).all()
        except sa.exc.OperationalError as exc:
            if "interrupted" in str(exc.orig):
                raise _over_budget(budget) from None
            raise
        finally:
            raw.set_progress_handler(None, 0)
    return [SearchHit.from_row(r) for r in rows]


def search_postgres(
    engine: sa.Engine,
    text: str,
    limit: int,
    resource_type: str | None,
    include_hidden: bool,
    budget: float,
) -> list[SearchHit]:
    query = tsquery(text)
    if query is None:
        return []
    params = {
        **_params(query, text, limit, resource_type, include_hidden),
        "candidates": RANK_CANDIDATES,
    }
    with engine.connect() as conn, conn.begin():
        # the budget covers both statements; SET LOCAL ends with the transaction
        conn.execute(sa.text(f"SET LOCAL statement_timeout = {max(int(budget * 1000), 1)}"))
        try:
            rows = (
                conn.execute(_POSTGRES_SEARCH, params).all()
                or conn.execute(_POSTGRES_FUZZY, params).all()
            )
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) == "57014":  # query_canceled
                raise _over_budget(budget) from None
            raise
    return [SearchHit.from_row(r) for r in rows]


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
    run = search_sqlite if engine.dialect.name == "sqlite" else search_postgres
    return run(engine, clean_query(text), limit, resource_type, include_hidden, budget)
