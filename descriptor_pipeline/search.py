"""Searching the published index: one ranking specification, implemented on both dialects.

The ranking (docs/search.md), the same on SQLite and PostgreSQL:
- candidates: documents holding every query word in any order, the last word as a prefix
  (FTS5 / tsvector), plus exact-name matches; when they are fewer than asked, documents whose
  name is similar (SQLite: FTS5 trigram table ranked by rapidfuzz; PostgreSQL: pg_trgm);
- score = tier + named + text share: tier 3 when the folded name equals the folded query, 2
  when it starts with it, 1 otherwise; +0.5 for a named resource (artist, album, track) so a
  short genre row never passes an artist of the same tier; + 0.49 * r / (r + 1) where r is the
  text rank with `schema.SEARCH_WEIGHTS` per weight class (bm25 column weights / ts_rank_cd);
- similar-name candidates score 0.99 * similarity, below every document that matched all words.

The user's words reach neither query language as syntax: they are split into word characters
and quoted. On PostgreSQL the ranking lives in the SQL function `descriptor_search` (migration
0008) that services call directly; this module calls the same function.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from descriptor_pipeline.documents import search_key
from descriptor_pipeline.rules import CONTROL_CHARS

WORD = re.compile(r"\w+", re.UNICODE)
MIN_PREFIX = 3  # "t:*" would match a third of a catalog: short last words match whole
RANK_CANDIDATES = 1000  # ranking cost is bounded: broad queries rank this many matches
SIMILAR_CANDIDATES = 200  # typo fallback: this many trigram candidates are compared
# No request runs unbounded: a query this long or with this many words is refused before any
# SQL (4,000 ANDed words took 19 s on SQLite; 20,000 exhausted PostgreSQL's memory), and every
# search has a time budget enforced by the database (statement_timeout, a progress handler).
MAX_QUERY_CHARS = 512
MAX_QUERY_WORDS = 16
MAX_LIMIT = 1000
DEFAULT_BUDGET_SECONDS = 2.0
# The ranking specification's numbers (also in migration 0008's SQL function; a test compares).
EXACT, PREFIX, WORDS = 3.0, 2.0, 1.0
NAMED_BONUS = 0.5
TEXT_SHARE = 0.49
SIMILAR_SHARE = 0.99


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
    matched_fields: tuple[str, ...] = ()
    match: str = "words"  # exact | prefix | words | similar

    def as_json(self) -> dict[str, Any]:
        """The consumer contract of `search --json`: stable keys, nothing else."""
        out = asdict(self)
        return {
            "key": out["document_key"],
            "type": out["resource_type"],
            "id": out["resource_id"],
            "name": out["name"],
            "score": round(out["rank"], 6),
            "matched_fields": list(out["matched_fields"]),
            "match": out["match"],
            "display_text": out["display_text"],
        }


def words(text: str) -> list[str]:
    """The query's words, compatibility-normalized and lower-cased like the indexed text."""
    return WORD.findall(search_key(text))


def clean_query(text: str) -> str:
    """The query without NUL, control, zero-width or bidi characters (PostgreSQL refuses NUL in
    text; the others only hide what is asked), after the length and word caps."""
    if not isinstance(text, str):
        raise SearchRefused(f"a query is text, not {type(text).__name__}")
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
    if len(tokens[-1]) >= MIN_PREFIX:
        quoted[-1] += "*"
    return " ".join(quoted)


def strip_marks(text: str) -> str:
    """Without combining marks, as FTS5's `remove_diacritics` and `unaccent` compare."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def over_budget(budget: float) -> SearchRefused:
    return SearchRefused(f"search took longer than its {budget:g} s budget")


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
    if engine.dialect.name == "sqlite":
        from descriptor_pipeline.search_sqlite import search_sqlite as run
    else:
        run = search_postgres
    return run(engine, clean_query(text), limit, resource_type, include_hidden, budget)
