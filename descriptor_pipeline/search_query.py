"""What both backends' searches share: the query's words and caps, the ranking's numbers, the
hit they return (the ranking itself is described in `search`)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

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


def fts_query(text: str, prefix: bool = True) -> str | None:
    """A safe FTS5 query: each word quoted (no operator injection), the last one a prefix
    (unless `prefix` is false)."""
    tokens = words(text)
    if not tokens:
        return None
    quoted = [f'"{t}"' for t in tokens]
    if prefix and len(tokens[-1]) >= MIN_PREFIX:
        quoted[-1] += "*"
    return " ".join(quoted)


def strip_marks(text: str) -> str:
    """Without combining marks, as FTS5's `remove_diacritics` and `unaccent` compare."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def over_budget(budget: float) -> SearchRefused:
    return SearchRefused(f"search took longer than its {budget:g} s budget")
