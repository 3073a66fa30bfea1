"""The typo fallback corrects words against a vocabulary instead of scanning name trigrams.

At a million documents the 0008 fallback compared the query with every name sharing its
trigrams: tens of thousands of posting-list entries per misspelling (SQLite: bm25 over an OR of
trigrams; PostgreSQL: a pg_trgm GIN bitmap rechecked in the wide heap rows), 50-300 ms. The
distinct words of names and aliases are few (thousands; a real catalog's hundreds of thousands),
so a misspelled word is now looked up among them, and the documents holding the corrected words
in their name or aliases are the candidates the similarity is computed on.

`descriptor_index_words`: every space-separated token of a folded name or alias ever published,
with a trigram index (SQLite: an FTS5 `trigram` table; PostgreSQL: pg_trgm GIN). Append-only:
a token whose documents are gone only yields a correction that finds nothing. Kept by triggers
on the published table (PostgreSQL: per statement, with a transition table; a shadow table gets
the same triggers in `index_store_postgres.create_shadow`).

PostgreSQL: `descriptor_search` as in 0008 with the new fallback; the pg_trgm index on
search_name is no longer read and is dropped (publishing no longer maintains it).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

WORDS = "descriptor_index_words"
PENDING_LIST_KB = 512

# SQLite has no string splitting: the tokens come from a JSON array built by replacing spaces
# (the search columns are folded: single spaces); text that does not make valid JSON adds none.
_SQLITE_JSON = (
    "'[\"' || replace(replace(replace(new.search_name || ' ' || new.search_aliases, "
    "'\\', '\\\\'), '\"', '\\\"'), ' ', '\",\"') || '\"]'"
)
# Not `INSERT OR IGNORE`: inside a trigger SQLite applies the firing statement's conflict policy
# instead, and the index is written by an upsert (ABORT on a word already known).
SQLITE_ADD_WORDS = (
    f"INSERT INTO {WORDS}(word) SELECT DISTINCT value FROM json_each("
    f"CASE WHEN json_valid({_SQLITE_JSON}) THEN {_SQLITE_JSON} ELSE '[]' END) "
    f"WHERE value <> '' AND value NOT IN (SELECT word FROM {WORDS});"
)

POSTGRES_ADD_WORDS = f"""
CREATE OR REPLACE FUNCTION descriptor_index_words_add() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO {WORDS} (word)
    SELECT DISTINCT w FROM new_rows n,
        regexp_split_to_table(n.search_name || ' ' || n.search_aliases, ' ') AS w
    WHERE w <> ''
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$
"""


def postgres_word_triggers(table: str) -> list[str]:
    """The statements that keep the vocabulary from `table` (the live or a shadow table)."""
    return [
        f"CREATE TRIGGER {table}_words_{event[:3].lower()} AFTER {event} ON {table} "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION descriptor_index_words_add()"
        for event in ("INSERT", "UPDATE")
    ]


# Tier 3 exact name, 2 name starts with the query, 1 every word matched (any order, the last
# as a prefix), +0.5 for a named resource (not a genre), +0.49 * the weighted text rank
# squashed to [0, 1); tier 0 (only when fewer than asked matched every word and no name is or
# starts with the query): 0.99 * trigram similarity of the name, over the names spelled by the
# corrected query and the documents whose name or aliases hold the query's words, each unknown
# one replaced by its corrections (or, when every word is known, all words but one).
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
    whole_words tsquery;
    whole_only boolean;
    any_word tsquery;
    last_word text;
    strict_ids bigint[];
    similar_ids bigint[] := '{}';
    token text;
    letters text[];
    alternatives text[];
    changed boolean := false;
    fixed_names text[] := ARRAY[''];
    groups text[] := '{}';
    similar_words tsquery;
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
    whole_words := to_tsquery('descriptor_search', array_to_string(ARRAY(
        SELECT '''' || w || '''' FROM unnest(words) AS w), ' & '));
    any_word := to_tsquery('descriptor_search', concat_ws(' | ',
        NULLIF(array_to_string(ARRAY(SELECT '''' || w || '''' FROM unnest(
            words[1:cardinality(words) - 1]) AS w), ' | '), ''),
        last_word));
    -- a very common last word fills the candidates whole: its prefix (every "the..." word) is
    -- searched only when the whole word gives fewer than 1000 matches
    strict_ids := ARRAY(
        SELECT d.doc_id FROM descriptor_index d
        WHERE d.search_vector @@ whole_words
          AND (include_hidden OR NOT d.hidden)
          AND (descriptor_search.resource_type IS NULL
               OR d.resource_type = descriptor_search.resource_type)
        LIMIT 1000);
    whole_only := cardinality(strict_ids) = 1000
        OR length(words[cardinality(words)]) < 3;  -- no prefix: the same query
    IF whole_only THEN
        all_words := whole_words;
    END IF;
    strict_ids := ARRAY(
        (SELECT d.doc_id FROM descriptor_index d
         WHERE NOT whole_only AND d.search_vector @@ all_words
           AND (include_hidden OR NOT d.hidden)
           AND (descriptor_search.resource_type IS NULL
                OR d.resource_type = descriptor_search.resource_type)
         LIMIT 1000)
        UNION
        (SELECT unnest(strict_ids) WHERE whole_only)
        UNION
        (SELECT d.doc_id FROM descriptor_index d
         WHERE d.search_name = folded
           AND (include_hidden OR NOT d.hidden)
           AND (descriptor_search.resource_type IS NULL
                OR d.resource_type = descriptor_search.resource_type)
         LIMIT max_results));
    IF cardinality(strict_ids) < max_results AND NOT EXISTS (
            SELECT 1 FROM descriptor_index d2
            WHERE d2.doc_id = ANY(strict_ids) AND starts_with(d2.search_name, folded)) THEN
        -- each token the vocabulary lacks: up to 4 vocabulary tokens one edit away (a letter
        -- deleted, swapped with the next, replaced or inserted; tokens of up to 30 characters)
        -- or else sharing its trigrams
        FOREACH token IN ARRAY ARRAY(SELECT t FROM regexp_split_to_table(folded, ' ') t
                                     WHERE t <> '') LOOP
            IF EXISTS (SELECT 1 FROM descriptor_index_words v WHERE v.word = token) THEN
                alternatives := ARRAY[token];
            ELSE
                changed := true;
                letters := ARRAY(SELECT DISTINCT c FROM regexp_split_to_table(
                    'abcdefghijklmnopqrstuvwxyz0123456789' || token, '') AS c);
                alternatives := ARRAY(
                    SELECT v.word FROM descriptor_index_words v
                    WHERE length(token) <= 30 AND v.word = ANY(ARRAY(
                        SELECT left(token, i - 1) || substr(token, i + 1)
                        FROM generate_series(1, length(token)) AS i
                        UNION SELECT left(token, i - 1) || substr(token, i + 1, 1)
                                     || substr(token, i, 1) || substr(token, i + 2)
                        FROM generate_series(1, length(token) - 1) AS i
                        UNION SELECT left(token, i - 1) || c || substr(token, i + 1)
                        FROM generate_series(1, length(token)) AS i, unnest(letters) AS c
                        UNION SELECT left(token, i - 1) || c || substr(token, i)
                        FROM generate_series(1, length(token) + 1) AS i, unnest(letters) AS c))
                    ORDER BY similarity(v.word, token) DESC, v.word LIMIT 4);
                IF cardinality(alternatives) = 0 AND length(token) >= 3 THEN
                    alternatives := ARRAY(
                        SELECT v.word FROM descriptor_index_words v WHERE lower(v.word) % token
                        ORDER BY similarity(v.word, token) DESC, v.word LIMIT 4);
                END IF;
            END IF;
            CONTINUE WHEN cardinality(alternatives) = 0;
            fixed_names := ARRAY(SELECT btrim(n || ' ' || a) FROM unnest(fixed_names) AS n,
                                 unnest(alternatives) AS a LIMIT 16);
            groups := groups || NULLIF(array_to_string(ARRAY(
                SELECT '(' || array_to_string(ARRAY(
                    SELECT '''' || w || '''\:AB'
                    FROM regexp_split_to_table(a, '[^[:alnum:]_]+') AS w WHERE w <> ''),
                    ' & ') || ')'
                FROM unnest(alternatives) AS a WHERE a ~ '[[:alnum:]_]'), ' | '), '');
        END LOOP;
        IF changed AND cardinality(groups) > 0 THEN
            similar_words := to_tsquery('descriptor_search', array_to_string(ARRAY(
                SELECT '(' || g || ')' FROM unnest(groups) AS g), ' & '));
        ELSIF NOT changed AND cardinality(words) > 1 THEN
            -- every word is known but no document holds them all: all words but the first or
            -- all but the last (a title with its artist's name around it)
            similar_words := to_tsquery('descriptor_search', array_to_string(ARRAY(
                SELECT '(' || array_to_string(ARRAY(
                    SELECT '''' || w || '''\:AB' FROM unnest(part) AS w), ' & ') || ')'
                FROM (VALUES (words[2:]), (words[1:cardinality(words) - 1])) AS parts(part)),
                ' | '));
        END IF;
        similar_ids := ARRAY(
            SELECT c.doc_id FROM (
                (SELECT d.doc_id FROM descriptor_index d
                 WHERE changed AND d.search_name = ANY(fixed_names)
                   AND (include_hidden OR NOT d.hidden)
                   AND (descriptor_search.resource_type IS NULL
                        OR d.resource_type = descriptor_search.resource_type)
                 LIMIT max_results)
                UNION
                (SELECT d.doc_id FROM descriptor_index d
                 WHERE similar_words IS NOT NULL AND d.search_vector @@ similar_words
                   AND (include_hidden OR NOT d.hidden)
                   AND (descriptor_search.resource_type IS NULL
                        OR d.resource_type = descriptor_search.resource_type)
                 LIMIT 200)) c
            WHERE c.doc_id <> ALL(strict_ids));
    END IF;
    RETURN QUERY
    WITH fuzzy AS (
        SELECT d.doc_id, similarity(d.search_name, folded) AS sim
        FROM descriptor_index d
        WHERE d.doc_id = ANY(similar_ids) AND d.search_name % folded),
    scored AS (
        SELECT d.doc_id,
               CASE WHEN d.search_name = folded THEN 3
                    WHEN starts_with(d.search_name, folded) THEN 2 ELSE 1 END
               + CASE WHEN d.resource_type <> 'genre' THEN 0.5 ELSE 0 END
               + 0.49 * ts_rank_cd('{0.1, 0.2, 0.4, 1.0}', d.search_vector, all_words, 32)
                   AS score,
               CASE WHEN d.search_name = folded THEN 'exact'
                    WHEN starts_with(d.search_name, folded) THEN 'prefix'
                    ELSE 'words' END AS match
        FROM descriptor_index d WHERE d.doc_id = ANY(strict_ids)
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
    op.execute(f"CREATE TABLE {WORDS} (word TEXT NOT NULL UNIQUE)")
    op.execute(f"""CREATE VIRTUAL TABLE {WORDS}_trigram USING fts5(word,
        content='{WORDS}', content_rowid='rowid', tokenize='trigram')""")
    op.execute(
        f"CREATE TRIGGER {WORDS}_ai AFTER INSERT ON {WORDS} "
        f"BEGIN INSERT INTO {WORDS}_trigram(rowid, word) VALUES (new.rowid, new.word); END"
    )
    for suffix, event in (("ai", "INSERT"), ("au", "UPDATE OF search_name, search_aliases")):
        op.execute(
            f"CREATE TRIGGER descriptor_index_vocab_{suffix} AFTER {event} ON descriptor_index "
            f"BEGIN {SQLITE_ADD_WORDS} END"
        )
    op.execute(f"""INSERT OR IGNORE INTO {WORDS}(word)
        SELECT value FROM descriptor_index AS new, json_each(CASE WHEN json_valid(
            {_SQLITE_JSON}) THEN {_SQLITE_JSON} ELSE '[]' END) WHERE value <> ''""")
    # 0008's trigram table over name and aliases is no longer read: publishing stops keeping it
    for suffix in ("ai", "ad", "au"):
        op.execute(f"DROP TRIGGER IF EXISTS descriptor_index_trigram_{suffix}")
    op.execute("DROP TABLE IF EXISTS descriptor_index_trigram_vocab")
    op.execute("DROP TABLE IF EXISTS descriptor_index_trigram")


def _postgres() -> None:
    op.execute(f"CREATE TABLE {WORDS} (word text PRIMARY KEY)")
    # on an expression: pg_trgm's GIN class also serves `=`, and the planner took it (1 s) over
    # the primary key for the lookup of a misspelling's one-edit variants
    op.execute(f"CREATE INDEX {WORDS}_trgm ON {WORDS} USING gin (lower(word) gin_trgm_ops)")
    op.execute(f"ALTER TABLE {WORDS} OWNER TO descriptor_writer")
    op.execute(f"GRANT SELECT ON {WORDS} TO descriptor_reader")
    op.execute(POSTGRES_ADD_WORDS)
    op.execute("ALTER FUNCTION descriptor_index_words_add() OWNER TO descriptor_writer")
    for statement in postgres_word_triggers("descriptor_index"):
        op.execute(statement)
    op.execute(f"""INSERT INTO {WORDS} (word)
        SELECT DISTINCT w FROM descriptor_index n,
            regexp_split_to_table(n.search_name || ' ' || n.search_aliases, ' ') AS w
        WHERE w <> '' ON CONFLICT DO NOTHING""")
    op.execute("DROP INDEX IF EXISTS descriptor_index_search_name_trgm")
    # Every GIN scan also reads the index's whole pending list (fastupdate): after a publish that
    # is up to 4 MB until a vacuum merges it, 5 ms of each search at 1M documents (0.1 ms
    # without). A 512 kB list keeps most of the batching of writes and bounds what a search reads.
    for index in ("descriptor_index_search", f"{WORDS}_trgm"):
        op.execute(f"ALTER INDEX {index} SET (gin_pending_list_limit = {PENDING_LIST_KB})")
    op.execute(SEARCH_FUNCTION)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite()
    elif dialect == "postgresql":
        _postgres()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    previous = importlib.import_module(
        "descriptor_pipeline.migrations.versions.0008_search_ranking"
    )
    if dialect == "sqlite":
        for trigger in ("descriptor_index_vocab_ai", "descriptor_index_vocab_au", f"{WORDS}_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute(f"DROP TABLE IF EXISTS {WORDS}_trigram")
        op.execute(f"DROP TABLE IF EXISTS {WORDS}")
        op.execute("DROP INDEX descriptor_index_search_name")  # 0008 creates it with the table
        previous._sqlite()
    elif dialect == "postgresql":
        for event in ("ins", "upd"):
            op.execute(f"DROP TRIGGER IF EXISTS descriptor_index_words_{event} ON descriptor_index")
        op.execute("DROP FUNCTION IF EXISTS descriptor_index_words_add() CASCADE")
        op.execute(f"DROP TABLE IF EXISTS {WORDS}")
        op.execute("ALTER INDEX descriptor_index_search RESET (gin_pending_list_limit)")
        op.execute(
            "CREATE INDEX IF NOT EXISTS descriptor_index_search_name_trgm ON descriptor_index "
            "USING gin (search_name gin_trgm_ops)"
        )
        op.execute(previous.SEARCH_FUNCTION)
