"""Concurrent publishes no longer deadlock on the search vocabulary.

0010's trigger inserts a statement's words into `descriptor_index_words` inside the publishing
transaction, which holds a whole partition. Two partitions published at once that share new
words wait on each other's uncommitted inserts, and when each holds a word the other needs next,
PostgreSQL aborts one ("deadlock detected while inserting index tuple in descriptor_index_words",
seen in a 100k benchmark backfill with 2 workers). The trigger now looks up which words are new
first; only a statement with new words takes a transaction-level advisory lock before inserting
them (sorted), so inserters of new words take turns until commit and never wait on each other in
a circle. Once the vocabulary knows a catalog's words (reruns, incremental refreshes) no publish
takes the lock. SQLite has one writer: nothing changes there.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# blake2b("descriptor:vocabulary") as a signed 64-bit key, in the space of the partition locks
VOCABULARY_LOCK = 568599730602508120

POSTGRES_ADD_WORDS = f"""
CREATE OR REPLACE FUNCTION descriptor_index_words_add() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    fresh text[];
BEGIN
    SELECT array_agg(DISTINCT w ORDER BY w) INTO fresh
    FROM new_rows n, regexp_split_to_table(n.search_name || ' ' || n.search_aliases, ' ') AS w
    WHERE w <> '' AND NOT EXISTS (SELECT 1 FROM descriptor_index_words v WHERE v.word = w);
    IF fresh IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock({VOCABULARY_LOCK});
        INSERT INTO descriptor_index_words (word)
        SELECT word FROM unnest(fresh) AS word ORDER BY word
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_ADD_WORDS)  # CREATE OR REPLACE keeps the owner and the triggers


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        previous = importlib.import_module(
            "descriptor_pipeline.migrations.versions.0010_search_vocabulary"
        )
        op.execute(previous.POSTGRES_ADD_WORDS)
