"""Every table the pipeline owns, declared once on one `metadata`.

The stores read and write them; migrations create them (`store_engine.run_migrations` checks that
every table declared here has one). Keeping the declarations apart from the code that queries them
lets any module name a table without importing a store, so no store imports another.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()
JSONText = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PUBLISHED_TABLE = "descriptor_index"


def _key_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.BigInteger, nullable=False),
    ]


raw_descriptors = sa.Table(
    "raw_descriptors",
    metadata,
    *_key_columns(),
    sa.Column("source_updated_at", sa.Text),
    sa.Column("name", sa.Text),
    sa.Column("spotify_data", sa.Text),
    sa.Column("enrichment_data", sa.Text),
    sa.Column("custom_data", sa.Text),
    sa.Column("links", sa.Text),
    sa.Column("raw_hash", sa.String(64), nullable=False),
    sa.Column("extracted_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("resource_type", "resource_id"),
)

normalized_descriptors = sa.Table(
    "normalized_descriptors",
    metadata,
    *_key_columns(),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("fields", JSONText, nullable=False),  # typed values per the canonical schema
    sa.Column("provenance", JSONText, nullable=False),
    sa.Column("hidden", sa.Boolean, nullable=False),
    sa.Column("blocked", sa.Boolean, nullable=False),
    sa.Column("source_updated_at", sa.Text),
    sa.Column("normalization_version", sa.String(32), nullable=False),
    sa.Column("raw_hash", sa.String(64), nullable=False),
    sa.Column("input_hash", sa.String(64), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("normalized_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("resource_type", "resource_id"),
)

descriptor_index = sa.Table(
    PUBLISHED_TABLE,
    metadata,
    sa.Column("doc_id", BigId, primary_key=True, autoincrement=True),
    *_key_columns(),
    sa.Column("document_key", sa.String(40), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("display_text", sa.Text, nullable=False),
    sa.Column("search_name", sa.Text, nullable=False),
    sa.Column("search_aliases", sa.Text, nullable=False),
    sa.Column("search_facets", sa.Text, nullable=False),
    sa.Column("search_description", sa.Text, nullable=False),
    sa.Column("document", JSONText, nullable=False),
    sa.Column("hidden", sa.Boolean, nullable=False),
    sa.Column("normalization_version", sa.String(32), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("input_hash", sa.String(64)),  # normalized content hash + document version
    sa.Column("source_updated_at", sa.Text),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("resource_type", "resource_id", name="descriptor_index_key"),
)
# Exact-name lookups of search (migration 0008; search columns hold `documents.search_key` text).
sa.Index("descriptor_index_search_name", descriptor_index.c.search_name)

quarantine = sa.Table(
    "descriptor_quarantine",
    metadata,
    *_key_columns(),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("partition_key", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(128), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("raw_value", sa.Text),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("resource_type", "resource_id", "stage"),
)
sa.Index("descriptor_quarantine_partition", quarantine.c.partition_key, quarantine.c.stage)

# What each partition's catalog range looked like when its raw rows were last fully synced.
range_fingerprints = sa.Table(
    "descriptor_range_fingerprint",
    metadata,
    sa.Column("partition_key", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("raw_rows", sa.Integer, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

# What the normalize and publish stages last consumed in full (migration 0009): a token of their
# input and the rows they left. Keyed by type and id bounds so an invalidation of some ids can
# forget the ranges that hold them.
stage_tokens = sa.Table(
    "descriptor_stage_token",
    metadata,
    sa.Column("resource_type", sa.String(16), primary_key=True),
    sa.Column("id_first", sa.BigInteger, primary_key=True),
    sa.Column("id_last", sa.BigInteger, primary_key=True),
    sa.Column("stage", sa.String(16), primary_key=True),
    sa.Column("token", sa.String(64), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

# Drift baselines live next to the data, not in the Dagster event log: a primary-key read per
# partition, the same on SQLite and Postgres, and independent of the instance's retention.
quality_profiles = sa.Table(
    "descriptor_quality_profile",
    metadata,  # versioned by migration 0003
    sa.Column("partition_key", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("profile", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

# Resources to re-index although their own `updated_at` did not move (`refresh/queue.py`).
# Append-only: `refresh_queue_sensor`'s cursor is the last seq it turned into run requests.
refresh_queue = sa.Table(
    "descriptor_refresh_queue",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    sa.Column("resource_type", sa.String(16), nullable=False),
    sa.Column("resource_id", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(16), nullable=False),
    sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,  # never reuse a seq, even after the table was pruned empty
)

# Reindex requests from other services, moved into the queue by `refresh/requests.py`.
refresh_requests = sa.Table(
    "descriptor_refresh_requests",
    metadata,
    sa.Column("request_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("resource_type", sa.String(16), nullable=False),
    sa.Column("resource_id", sa.BigInteger, nullable=False),
    sa.Column("requested_by", sa.String(128)),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("detail", sa.Text),
    sa.Column("processed_at", sa.DateTime(timezone=True)),
)
sa.Index("descriptor_refresh_requests_status", refresh_requests.c.status)

_shadow_metadata = sa.MetaData()


def shadow_index_table(name: str) -> sa.Table:
    """A table shaped like the published index under another name (a full rebuild's target)."""
    if name not in _shadow_metadata.tables:
        descriptor_index.to_metadata(_shadow_metadata, name=name)
    return _shadow_metadata.tables[name]
