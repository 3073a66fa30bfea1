"""The ranking of `search` on SQLite: FTS5 for the words, a vocabulary for typos.

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
# how many documents (up to RANK_CANDIDATES) hold the words with the last one whole: no bm25,
# whose document counts cost as much as the matching for a common word
_WHOLE_COUNT = sa.text(f"""
    SELECT count(*) FROM (
        SELECT 1 FROM descriptor_index_fts
        JOIN descriptor_index d ON d.doc_id = descriptor_index_fts.rowid
        WHERE descriptor_index_fts MATCH :whole {_FILTERS} LIMIT :candidates)""")
_EXACT = sa.text(f"""
    SELECT d.doc_id, d.resource_type, d.search_name, 0.0 AS text_rank
    FROM descriptor_index d WHERE d.search_name = :key {_FILTERS} LIMIT :limit""")
# The typo fallback's candidates: documents whose name or aliases hold the corrected words (in
# index order), and the names equal to the corrected query.
_SIMILAR = sa.text(f"""
    SELECT d.doc_id, d.search_name, d.search_aliases
    FROM descriptor_index_fts JOIN descriptor_index d ON d.doc_id = descriptor_index_fts.rowid
    WHERE descriptor_index_fts MATCH :similar {_FILTERS}
    LIMIT :candidates""")
_SIMILAR_EXACT = sa.text(
    f"""
    SELECT d.doc_id, d.search_name, d.search_aliases
    FROM descriptor_index d WHERE d.search_name IN :names {_FILTERS} LIMIT :limit"""
).bindparams(sa.bindparam("names", expanding=True))
_KNOWN = sa.text("SELECT word FROM descriptor_index_words WHERE word IN :tokens").bindparams(
    sa.bindparam("tokens", expanding=True)
)
# vocabulary words sharing the token's trigrams, best first by bm25: the correction is the one
# of them with the best edit similarity
_LOOKALIKES = sa.text("""
    SELECT w.word FROM descriptor_index_words_trigram t
    JOIN descriptor_index_words w ON w.rowid = t.rowid
    WHERE descriptor_index_words_trigram MATCH :grams
    ORDER BY t.rank LIMIT :n""")
_SHOW = sa.text(
    "SELECT doc_id, resource_type, resource_id, document_key, name, display_text, "
    f"{', '.join(WEIGHT_COLUMNS.values())} FROM descriptor_index WHERE doc_id IN :ids"
).bindparams(sa.bindparam("ids", expanding=True))
PAGE_CACHE_KB = 32_768
MIN_SIMILARITY = 0.6  # rapidfuzz / 100: below this a "similar" name is noise
LOOKALIKES = 20  # vocabulary words sharing trigrams compared with a misspelled token
ALTERNATIVES = 4  # corrections kept per misspelled token
CORRECTED_NAMES = 16  # corrected queries looked up as whole names
EDIT_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
EDIT_MAX_CHARS = 30  # a longer token has thousands of variants (512 letters: 38,000): trigrams only
_NAME_COLUMNS = "{search_name search_aliases}"


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def edits(token: str) -> list[str]:
    """Every string one edit away: a letter deleted, two adjacent letters swapped, a letter
    replaced or inserted (a-z, digits and the token's own letters)."""
    letters = sorted(set(EDIT_LETTERS) | set(token))
    cuts = [(token[:i], token[i:]) for i in range(len(token) + 1)]
    out = {a + b[1:] for a, b in cuts if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in cuts if len(b) > 1}
    out |= {a + c + b[1:] for a, b in cuts if b for c in letters}
    out |= {a + c + b for a, b in cuts for c in letters}
    out.discard(token)
    out.discard("")
    return sorted(out)


def corrections(conn: sa.Connection, key: str) -> list[list[str]]:
    """Per space-separated token of the folded query (as the vocabulary holds them): the token
    itself when some name or alias has it, else up to ALTERNATIVES vocabulary tokens one edit
    away (tokens of up to EDIT_MAX_CHARS) or, when none is, the most similar ones sharing its
    trigrams (edit similarity of at least MIN_SIMILARITY); an empty list drops the token."""
    tokens = [t for t in key.split(" ") if t]
    known = {r[0] for r in conn.execute(_KNOWN, {"tokens": sorted(set(tokens))})}
    out: list[list[str]] = []
    for token in tokens:
        if token in known:
            out.append([token])
            continue
        found = (
            [r[0] for r in conn.execute(_KNOWN, {"tokens": edits(token)})]
            if len(token) <= EDIT_MAX_CHARS
            else []
        )
        if not found and len(token) >= 3:
            grams = sorted({token[i : i + 3] for i in range(len(token) - 2)})
            found = [
                r[0]
                for r in conn.execute(
                    _LOOKALIKES, {"grams": " OR ".join(map(_quote, grams)), "n": LOOKALIKES}
                )
                if fuzz.ratio(token, r[0]) >= MIN_SIMILARITY * 100
            ]
        out.append(sorted(found, key=lambda w: (-fuzz.ratio(token, w), w))[:ALTERNATIVES])
    return out


def corrected_names(fixes: list[list[str]]) -> list[str]:
    """The first CORRECTED_NAMES whole queries the corrections spell."""
    names = [""]
    for alternatives in fixes:
        if alternatives:
            names = [f"{n} {a}".strip() for n in names for a in alternatives][:CORRECTED_NAMES]
    return [n for n in names if n]


def similar_query(key: str, fixes: list[list[str]]) -> str | None:
    """The FTS5 query of the fallback's candidates in the name or the aliases: each token or
    one of its corrections; when every token is known (yet no document holds them all), all
    words but the first or all but the last (a title with its artist's name around it)."""
    tokens = [t for t in key.split(" ") if t]
    if fixes != [[t] for t in tokens]:
        groups = []
        for alternatives in fixes:
            spelled = [" AND ".join(map(_quote, words(a))) for a in alternatives if words(a)]
            if spelled:
                groups.append("(" + " OR ".join(f"({s})" for s in spelled) + ")")
        return f"{_NAME_COLUMNS} : ({' AND '.join(groups)})" if groups else None
    tokens = words(key)
    if len(tokens) < 2:
        return None
    groups = [" AND ".join(map(_quote, part)) for part in (tokens[1:], tokens[:-1])]
    return f"{_NAME_COLUMNS} : (({groups[0]}) OR ({groups[1]}))"


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
        "whole": fts_query(text, prefix=False),
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
        # the 1,000 candidates' rows and bm25 document sizes are read at random: a page cache
        # larger than the default 2 MB keeps the index's upper pages between searches
        raw.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KB}")
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
    # A very common last word fills the candidates whole: its prefix (every "the…" word) is
    # searched only when the whole word gives fewer than RANK_CANDIDATES matches.
    whole = params["whole"] == params["query"]
    if not whole and conn.execute(_WHOLE_COUNT, params).scalar() == RANK_CANDIDATES:
        params = {**params, "query": params["whole"]}
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
    fixes = corrections(conn, key)
    names = corrected_names(fixes)
    query = similar_query(key, fixes)
    similar = [
        *(conn.execute(_SIMILAR_EXACT, {**params, "names": names}) if names else []),
        *(
            conn.execute(_SIMILAR, {**params, "similar": query, "candidates": SIMILAR_CANDIDATES})
            if query
            else []
        ),
    ]
    for row in similar:
        if row.doc_id in scores:
            continue
        found = similarity(key, row.search_name, row.search_aliases)
        if found >= MIN_SIMILARITY:
            scores[row.doc_id] = SIMILAR_SHARE * found
            kinds[row.doc_id] = "similar"
    return scores, kinds
