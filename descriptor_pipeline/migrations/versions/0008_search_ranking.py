"""One ranking on both backends (docs/search.md): exact-name lookups, typo candidates, and the
`descriptor_search` SQL function services call on PostgreSQL.

SQLite: an index on search_name (exact names) and an FTS5 `trigram` table over name and aliases
(the candidates of the typo fallback), kept in step by triggers like `descriptor_index_fts`, with
an fts5vocab table of its trigrams' document counts.
PostgreSQL: a btree and a pg_trgm index on search_name, and `descriptor_search(query, type,
limit)`, executable by `descriptor_reader`; `search.search_postgres` calls the same function, so
a service and this package get one ranking. The weights are `schema.SEARCH_WEIGHTS` (a test
checks they agree).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TRIGRAM_COLUMNS = "search_name, search_aliases"

# Tier 3 exact name, 2 name starts with the query, 1 every word matched (any order, the last
# as a prefix), +0.5 for a named resource (not a genre), +0.49 * the weighted text rank
# squashed to [0, 1); tier 0 (only when fewer than asked matched every word and no name is or
# starts with the query): 0.99 * trigram similarity.
SEARCH_FUNCTION = r"""
CREATE OR REPLACE FUNCTION descriptor_search(
    query text,
    resource_type text DEFAULT NULL,
    max_results integer DEFAULT 10,
    include_hidden boolean DEFAULT false)
RETURNS TABLE (key text, type text, id bigint, name text, display_text text,
               score double precision, matched_fields text[], match text)
LANGUAGE plpgsql STABLE
AS $fn$
#variable_conflict use_column
DECLARE
    folded text;
    words text[];
    all_words tsquery;
    any_word tsquery;
    last_word text;
BEGIN
    IF query IS NULL THEN
        RETURN;
    END IF;
    IF length(query) > 512 THEN
        RAISE EXCEPTION 'query is % characters; at most 512 are searched', length(query)
            USING ERRCODE = '22023';
    END IF;
    IF max_results IS NULL OR max_results < 1 OR max_results > 1000 THEN
        RAISE EXCEPTION 'max_results must be between 1 and 1000, not %', max_results
            USING ERRCODE = '22023';
    END IF;
    folded := btrim(regexp_replace(lower(normalize(query, NFKC)), '\s+', ' ', 'g'));
    words := ARRAY(SELECT w FROM regexp_split_to_table(folded, '[^[:alnum:]_]+') AS w
                   WHERE w <> '');
    IF cardinality(words) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(words) > 16 THEN
        RAISE EXCEPTION 'query has % words; at most 16 are searched', cardinality(words)
            USING ERRCODE = '22023';
    END IF;
    last_word := '''' || words[cardinality(words)] || ''''
        || CASE WHEN length(words[cardinality(words)]) >= 3 THEN ':*' ELSE '' END;
    all_words := to_tsquery('descriptor_search', concat_ws(' & ',
        NULLIF(array_to_string(ARRAY(SELECT '''' || w || '''' FROM unnest(
            words[1:cardinality(words) - 1]) AS w), ' & '), ''),
        last_word));
    any_word := to_tsquery('descriptor_search', concat_ws(' | ',
        NULLIF(array_to_string(ARRAY(SELECT '''' || w || '''' FROM unnest(
            words[1:cardinality(words) - 1]) AS w), ' | '), ''),
        last_word));
    RETURN QUERY
    WITH strict AS (
        (SELECT d.doc_id FROM descriptor_index d
         WHERE d.search_vector @@ all_words
           AND (include_hidden OR NOT d.hidden)
           AND (descriptor_search.resource_type IS NULL
                OR d.resource_type = descriptor_search.resource_type)
         LIMIT 1000)
        UNION
        (SELECT d.doc_id FROM descriptor_index d
         WHERE d.search_name = folded
           AND (include_hidden OR NOT d.hidden)
           AND (descriptor_search.resource_type IS NULL
                OR d.resource_type = descriptor_search.resource_type)
         LIMIT max_results)),
    fuzzy AS (
        SELECT d.doc_id, similarity(d.search_name, folded) AS sim
        FROM descriptor_index d
        WHERE (SELECT count(*) FROM strict) < max_results
          AND NOT EXISTS (SELECT 1 FROM strict s2 JOIN descriptor_index d2
                          ON d2.doc_id = s2.doc_id WHERE starts_with(d2.search_name, folded))
          AND d.search_name % folded
          AND (include_hidden OR NOT d.hidden)
          AND (descriptor_search.resource_type IS NULL
               OR d.resource_type = descriptor_search.resource_type)
          AND d.doc_id NOT IN (SELECT s.doc_id FROM strict s)
        ORDER BY sim DESC, d.doc_id
        LIMIT 200),
    scored AS (
        SELECT s.doc_id,
               CASE WHEN d.search_name = folded THEN 3
                    WHEN starts_with(d.search_name, folded) THEN 2 ELSE 1 END
               + CASE WHEN d.resource_type <> 'genre' THEN 0.5 ELSE 0 END
               + 0.49 * ts_rank_cd('{0.1, 0.2, 0.4, 1.0}', d.search_vector, all_words, 32)
                   AS score,
               CASE WHEN d.search_name = folded THEN 'exact'
                    WHEN starts_with(d.search_name, folded) THEN 'prefix'
                    ELSE 'words' END AS match
        FROM strict s JOIN descriptor_index d ON d.doc_id = s.doc_id
        UNION ALL
        SELECT f.doc_id, 0.99 * f.sim, 'similar' FROM fuzzy f),
    best AS (
        SELECT sc.doc_id, sc.score, sc.match FROM scored sc
        ORDER BY sc.score DESC, sc.doc_id LIMIT max_results)
    SELECT d.document_key::text, d.resource_type::text, d.resource_id, d.name, d.display_text,
           b.score::double precision,
           CASE WHEN b.match = 'similar' THEN ARRAY['name']
           ELSE array_remove(ARRAY[
               CASE WHEN ts_filter(d.search_vector, '{a}') @@ any_word THEN 'name' END,
               CASE WHEN ts_filter(d.search_vector, '{b}') @@ any_word THEN 'aliases' END,
               CASE WHEN ts_filter(d.search_vector, '{c}') @@ any_word THEN 'facets' END,
               CASE WHEN ts_filter(d.search_vector, '{d}') @@ any_word THEN 'description' END
           ], NULL) END,
           b.match
    FROM best b JOIN descriptor_index d ON d.doc_id = b.doc_id
    ORDER BY b.score DESC, b.doc_id;
END
$fn$
"""


def _sqlite() -> None:
    op.execute("CREATE INDEX descriptor_index_search_name ON descriptor_index (search_name)")
    op.execute(f"""CREATE VIRTUAL TABLE descriptor_index_trigram USING fts5({TRIGRAM_COLUMNS},
        content='descriptor_index', content_rowid='doc_id', tokenize='trigram')""")
    new = "new.search_name, new.search_aliases"
    old = "old.search_name, old.search_aliases"
    insert = (
        f"INSERT INTO descriptor_index_trigram(rowid, {TRIGRAM_COLUMNS}) "
        f"VALUES (new.doc_id, {new});"
    )
    delete = (
        f"INSERT INTO descriptor_index_trigram(descriptor_index_trigram, rowid, "
        f"{TRIGRAM_COLUMNS}) VALUES ('delete', old.doc_id, {old});"
    )
    for suffix, event, body in (
        ("ai", "INSERT", insert),
        ("ad", "DELETE", delete),
        ("au", "UPDATE", f"{delete} {insert}"),
    ):
        op.execute(
            f"CREATE TRIGGER descriptor_index_trigram_{suffix} AFTER {event} ON descriptor_index "
            f"BEGIN {body} END"
        )
    op.execute("INSERT INTO descriptor_index_trigram(descriptor_index_trigram) VALUES ('rebuild')")
    # document counts per trigram: the fallback ORs only the query's rarest trigrams
    op.execute(
        "CREATE VIRTUAL TABLE descriptor_index_trigram_vocab "
        "USING fts5vocab(descriptor_index_trigram, row)"
    )


def _postgres() -> None:
    op.execute("CREATE INDEX descriptor_index_search_name ON descriptor_index (search_name)")
    op.execute(
        "CREATE INDEX descriptor_index_search_name_trgm ON descriptor_index "
        "USING gin (search_name gin_trgm_ops)"
    )
    op.execute(SEARCH_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION descriptor_search(text, text, integer, boolean) FROM PUBLIC")
    op.execute(
        "GRANT EXECUTE ON FUNCTION descriptor_search(text, text, integer, boolean) "
        "TO descriptor_reader, descriptor_writer"
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite()
    elif dialect == "postgresql":
        _postgres()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS descriptor_index_trigram_{suffix}")
        op.execute("DROP TABLE IF EXISTS descriptor_index_trigram_vocab")
        op.execute("DROP TABLE IF EXISTS descriptor_index_trigram")
    elif dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS descriptor_search(text, text, integer, boolean)")
        op.execute("DROP INDEX IF EXISTS descriptor_index_search_name_trgm")
    op.execute("DROP INDEX IF EXISTS descriptor_index_search_name")
