"""Refresh work queue (linked-resource fan-out) and targeted reindex requests.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WRITER_ROLE = "descriptor_writer"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "descriptor_refresh_queue",
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("enqueued_at", ts, nullable=False),
        sa.Column("claim_key", sa.String(128)),
        sa.Column("claimed_at", ts),
        sa.PrimaryKeyConstraint("resource_type", "resource_id"),
    )
    op.create_index("descriptor_refresh_queue_claim", "descriptor_refresh_queue", ["claim_key"])
    op.create_index("descriptor_refresh_queue_order", "descriptor_refresh_queue", ["enqueued_at"])
    op.create_table(
        "descriptor_refresh_requests",
        sa.Column(
            "request_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.BigInteger, nullable=False),
        sa.Column("requested_by", sa.String(128)),
        sa.Column("requested_at", ts, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("detail", sa.Text),
        sa.Column("processed_at", ts),
    )
    op.create_index("descriptor_refresh_requests_status", "descriptor_refresh_requests", ["status"])
    if op.get_bind().dialect.name == "postgresql":
        for table in ("descriptor_refresh_queue", "descriptor_refresh_requests"):
            op.execute(f"ALTER TABLE {table} OWNER TO {WRITER_ROLE}")


def downgrade() -> None:
    op.drop_table("descriptor_refresh_requests")
    op.drop_table("descriptor_refresh_queue")
