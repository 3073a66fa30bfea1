"""A ledger of catalog range fingerprints: a no-change rerun reads one hash, not the range.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "descriptor_range_fingerprint",
        sa.Column("partition_key", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("raw_rows", sa.Integer, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE descriptor_range_fingerprint OWNER TO descriptor_writer")


def downgrade() -> None:
    op.drop_table("descriptor_range_fingerprint")
