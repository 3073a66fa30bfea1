"""The ranking of `search` on SQLite: FTS5 for the words, a trigram table for typos.

PostgreSQL does the same in SQL (`descriptor_search`); here the candidates come from SQL and
their scores are computed in Python, because FTS5 cannot express the tiers and rapidfuzz's edit
similarity is not available inside SQLite.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from rapidfuzz import fuzz, utils

from descriptor_pipeline.documents import WEIGHT_COLUMNS, search_key
from descriptor_pipeline.schema import SEARCH_WEIGHTS
from descriptor_pipeline.search_query import (
    EXACT,
    MIN_PREFIX,
    NAMED_BONUS,
    PREFIX,
    RANK_CANDIDATES,
    SIMILAR_CANDIDATES,
    SIMILAR_SHARE,
    TEXT_SHARE,
    WORDS,
    SearchHit,
    fts_query,
    over_budget,
    strip_marks,
    words,
)

_FILTERS = """AND (:include_hidden OR NOT d.hidden)
      AND (:resource_type IS NULL OR d.resource_type = :resource_type)"""
_BM25 = "bm25(descriptor_index_fts, {})".format(
    ", ".join(str(SEARCH_WEIGHTS[w]) for w in WEIGHT_COLUMNS)  # type: ignore[index]
)
# The first RANK_CANDIDATES matches in index order, as PostgreSQL's GIN scan gives them: ordering
# every match of a broad word by bm25 first cost 40 ms for "the" at 100k documents.
_ALL_WORDS = sa.text(f"""
    SELECT d.doc_id, d.resource_type, d.search_name, -{_BM25} AS text_rank
    FROM descriptor_index_fts JOIN descriptor_index d ON d.doc_id = descriptor_index_fts.rowid
    WHERE descriptor_index_fts MATCH :query {_FILTERS}
    LIMIT :candidates""")
_EXACT = sa.text(f"""
    SELECT d.doc_id, d.resource_type, d.search_name, 0.0 AS text_rank
    FROM descriptor_index d WHERE d.search_name = :key {_FILTERS} LIMIT :limit""")
_SIMILAR = sa.text(f"""
    SELECT d.doc_id, d.search_name, d.search_aliases
    FROM descriptor_index_trigram t JOIN descriptor_index d ON d.doc_id = t.rowid
    WHERE descriptor_index_trigram MATCH :grams {_FILTERS}
    ORDER BY t.rank LIMIT :candidates""")
_SHOW = sa.text(
    "SELECT doc_id, resource_type, resource_id, document_key, name, display_text, "
    f"{', '.join(WEIGHT_COLUMNS.values())} FROM descriptor_index WHERE doc_id IN :ids"
).bindparams(sa.bindparam("ids", expanding=True))
_GRAM_COUNTS = sa.text(
    "SELECT term, doc FROM descriptor_index_trigram_vocab WHERE term IN :grams"
).bindparams(sa.bindparam("grams", expanding=True))
MIN_SIMILARITY = 0.6  # rapidfuzz / 100: below this a "similar" name is noise
MAX_GRAMS = 32
RARE_GRAMS = 8


def query_grams(key: str) -> list[str]:
    """The letter trigrams of the query's words, first MAX_GRAMS of them."""
    grams: dict[str, None] = {}
    for word in words(key):
        for i in range(len(word) - 2):
            grams[word[i : i + 3]] = None
    return list(grams)[:MAX_GRAMS]


def trigram_query(conn: sa.Connection, key: str) -> str | None:
    """The query's RARE_GRAMS rarest trigrams that the index holds, ORed and quoted: a common
    one ("the", "ion") would make thousands of candidates to rank (p95 of this step at 100k
    documents: 42 ms with every trigram, 22 ms with the 8 rarest)."""
    grams = query_grams(key)
    if not grams:
        return None
    counts = dict(conn.execute(_GRAM_COUNTS, {"grams": grams}).all())
    present = sorted((g for g in grams if counts.get(g, 0) > 0), key=lambda g: counts[g])
    return " OR ".join(f'"{g}"' for g in present[:RARE_GRAMS]) or None


def similarity(key: str, name: str, aliases: str) -> float:
    """Edit similarity in [0, 1], word order free: token_sort_ratio against the name (it does
    not reward a short name for being inside the query, as WRatio's partial match does), WRatio
    against the joined aliases, which count for 0.9."""
    by_name = fuzz.token_sort_ratio(key, name, processor=utils.default_process)
    by_alias = fuzz.WRatio(key, aliases, processor=utils.default_process) if aliases else 0
    return max(by_name, 0.9 * by_alias) / 100


def word_score(key: str, resource_type: str, search_name: str, text_rank: float) -> float:
    tier = EXACT if search_name == key else PREFIX if search_name.startswith(key) else WORDS
    named = NAMED_BONUS if resource_type != "genre" else 0.0
    return tier + named + TEXT_SHARE * text_rank / (text_rank + 1)


def matched_fields(query_words: list[str], row: Any) -> tuple[str, ...]:
    """The weight-class columns holding any query word (the last also as a prefix)."""
    wanted = {strip_marks(w) for w in query_words}
    last = strip_marks(query_words[-1])
    out = []
    for column in WEIGHT_COLUMNS.values():
        tokens = set(words(strip_marks(getattr(row, column))))
        if wanted & tokens or (len(last) >= MIN_PREFIX and any(t.startswith(last) for t in tokens)):
            out.append(column.removeprefix("search_"))
    return tuple(out)


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
    key = search_key(text)
    params: dict[str, Any] = {
        "query": query,
        "key": key,
        "limit": limit,
        "candidates": RANK_CANDIDATES,
        "resource_type": resource_type,
        "include_hidden": include_hidden,
    }
    deadline = time.monotonic() + budget
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        # SQLite calls this every 1,000 virtual-machine steps; non-zero interrupts the statement
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 1_000)
        try:
            scores, kinds = _rank(conn, key, params)
            best = sorted(scores, key=lambda d: (-scores[d], d))[:limit]
            rows = conn.execute(_SHOW, {"ids": best}).all() if best else []
        except sa.exc.OperationalError as exc:
            if "interrupted" in str(exc.orig):
                raise over_budget(budget) from None
            raise
        finally:
            raw.set_progress_handler(None, 0)
    query_words = words(text)
    by_id = {r.doc_id: r for r in rows}
    return [
        SearchHit(
            by_id[d].resource_type,
            int(by_id[d].resource_id),
            by_id[d].document_key,
            by_id[d].name,
            by_id[d].display_text,
            scores[d],
            ("name",) if kinds[d] == "similar" else matched_fields(query_words, by_id[d]),
            kinds[d],
        )
        for d in best
        if d in by_id
    ]


def _rank(
    conn: sa.Connection, key: str, params: dict[str, Any]
) -> tuple[dict[int, float], dict[int, str]]:
    scores: dict[int, float] = {}
    kinds: dict[int, str] = {}
    for row in [*conn.execute(_ALL_WORDS, params), *conn.execute(_EXACT, params)]:
        if row.doc_id in scores:
            continue
        scores[row.doc_id] = word_score(key, row.resource_type, row.search_name, row.text_rank)
        kinds[row.doc_id] = (
            "exact"
            if row.search_name == key
            else "prefix"
            if row.search_name.startswith(key)
            else "words"
        )
    named = any(kind in ("exact", "prefix") for kind in kinds.values())
    if len(scores) >= params["limit"] or named:
        return scores, kinds
    grams = trigram_query(conn, key)
    if grams is None:
        return scores, kinds
    similar = conn.execute(_SIMILAR, {**params, "grams": grams, "candidates": SIMILAR_CANDIDATES})
    for row in similar:
        if row.doc_id in scores:
            continue
        found = similarity(key, row.search_name, row.search_aliases)
        if found >= MIN_SIMILARITY:
            scores[row.doc_id] = SIMILAR_SHARE * found
            kinds[row.doc_id] = "similar"
    return scores, kinds
