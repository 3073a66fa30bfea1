"""Stage tables, the published index with its search structures, quarantine, roles.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

READER_ROLE = "descriptor_reader"
WRITER_ROLE = "descriptor_writer"
PIPELINE_TABLES = (
    "raw_descriptors",
    "normalized_descriptors",
    "descriptor_index",
    "descriptor_quarantine",
)


def _json() -> sa.types.TypeEngine:
    return sa.Text().with_variant(postgresql.JSONB(), "postgresql")


def _keys() -> list[sa.Column]:
    return [
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.BigInteger, nullable=False),
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "raw_descriptors",
        *_keys(),
        sa.Column("source_updated_at", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("spotify_data", sa.Text),
        sa.Column("enrichment_data", sa.Text),
        sa.Column("custom_data", sa.Text),
        sa.Column("links", sa.Text),
        sa.Column("raw_hash", sa.String(64), nullable=False),
        sa.Column("extracted_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "resource_id"),
    )
    op.create_table(
        "normalized_descriptors",
        *_keys(),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("fields", _json(), nullable=False),
        sa.Column("provenance", _json(), nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False),
        sa.Column("source_updated_at", sa.Text),
        sa.Column("normalization_version", sa.String(32), nullable=False),
        sa.Column("raw_hash", sa.String(64), nullable=False),
        sa.Column("input_hash", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("normalized_at", ts, nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "resource_id"),
    )
    op.create_table(
        "descriptor_index",
        sa.Column(
            "doc_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        *_keys(),
        sa.Column("document_key", sa.String(40), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("display_text", sa.Text, nullable=False),
        sa.Column("search_name", sa.Text, nullable=False),
        sa.Column("search_aliases", sa.Text, nullable=False),
        sa.Column("search_facets", sa.Text, nullable=False),
        sa.Column("search_description", sa.Text, nullable=False),
        sa.Column("document", _json(), nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False),
        sa.Column("normalization_version", sa.String(32), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source_updated_at", sa.Text),
        sa.Column("published_at", ts, nullable=False),
        sa.UniqueConstraint("resource_type", "resource_id", name="descriptor_index_key"),
    )
    op.create_table(
        "descriptor_quarantine",
        *_keys(),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("partition_key", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw_value", sa.Text),
        sa.Column("first_seen", ts, nullable=False),
        sa.Column("last_seen", ts, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "resource_id", "stage"),
    )
    op.create_index(
        "descriptor_quarantine_partition", "descriptor_quarantine", ["partition_key", "stage"]
    )
    if dialect == "sqlite":
        _sqlite_fts()
    elif dialect == "postgresql":
        _postgres_search()
        _postgres_roles()


def _sqlite_fts() -> None:
    cols = "search_name, search_aliases, search_facets, search_description"
    new = ", ".join(f"new.{c.strip()}" for c in cols.split(","))
    old = ", ".join(f"old.{c.strip()}" for c in cols.split(","))
    op.execute(f"""CREATE VIRTUAL TABLE descriptor_index_fts USING fts5({cols},
        content='descriptor_index', content_rowid='doc_id',
        tokenize='unicode61 remove_diacritics 2')""")
    insert = f"INSERT INTO descriptor_index_fts(rowid, {cols}) VALUES (new.doc_id, {new});"
    delete = (
        f"INSERT INTO descriptor_index_fts(descriptor_index_fts, rowid, {cols}) "
        f"VALUES ('delete', old.doc_id, {old});"
    )
    op.execute(
        f"CREATE TRIGGER descriptor_index_ai AFTER INSERT ON descriptor_index BEGIN {insert} END"
    )
    op.execute(
        f"CREATE TRIGGER descriptor_index_ad AFTER DELETE ON descriptor_index BEGIN {delete} END"
    )
    op.execute(
        f"CREATE TRIGGER descriptor_index_au AFTER UPDATE ON descriptor_index "
        f"BEGIN {delete} {insert} END"
    )


def _postgres_search() -> None:
    # pg_trgm and unaccent are trusted extensions: the database owner may create them.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    # 'simple' (no stemming: names are multilingual) plus unaccent, so bjork finds Björk.
    op.execute("""DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_ts_config WHERE cfgname = 'descriptor_search') THEN
            CREATE TEXT SEARCH CONFIGURATION descriptor_search (COPY = simple);
            ALTER TEXT SEARCH CONFIGURATION descriptor_search
                ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple;
        END IF; END $$""")
    op.execute("""ALTER TABLE descriptor_index ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (
            setweight(to_tsvector('descriptor_search', search_name), 'A') ||
            setweight(to_tsvector('descriptor_search', search_aliases), 'B') ||
            setweight(to_tsvector('descriptor_search', search_facets), 'C') ||
            setweight(to_tsvector('descriptor_search', search_description), 'D')) STORED""")
    op.execute("CREATE INDEX descriptor_index_search ON descriptor_index USING gin (search_vector)")
    op.execute(
        "CREATE INDEX descriptor_index_name_trgm ON descriptor_index USING gin (name gin_trgm_ops)"
    )


def _postgres_roles() -> None:
    """Readers may SELECT the published index only; the writer owns the pipeline's tables."""
    op.execute(f"""DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
            CREATE ROLE {READER_ROLE} NOLOGIN; END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{WRITER_ROLE}') THEN
            CREATE ROLE {WRITER_ROLE} NOLOGIN; END IF;
        END $$""")
    op.execute(
        "DO $$ BEGIN EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO "
        f"{READER_ROLE}, {WRITER_ROLE}', current_database()); END $$"
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {READER_ROLE}, {WRITER_ROLE}")
    op.execute(f"GRANT CREATE ON SCHEMA public TO {WRITER_ROLE}")  # shadow tables
    for table in PIPELINE_TABLES:
        op.execute(f"ALTER TABLE {table} OWNER TO {WRITER_ROLE}")
    op.execute(f"GRANT SELECT ON descriptor_index TO {READER_ROLE}")
    op.execute(f"GRANT SELECT ON descriptor_pipeline_version TO {WRITER_ROLE}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TABLE IF EXISTS descriptor_index_fts")
    for table in reversed(PIPELINE_TABLES):
        op.drop_table(table)
