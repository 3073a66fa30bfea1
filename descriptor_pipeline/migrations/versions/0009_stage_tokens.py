"""A ledger of what the normalize and publish stages last consumed in full, per partition.

With the catalog fingerprint (0005) it lets a scheduled full refresh tell a current partition
from one that needs a run without reading a row of it.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "descriptor_stage_token",
        sa.Column("resource_type", sa.String(16), primary_key=True),
        sa.Column("id_first", sa.BigInteger, primary_key=True),
        sa.Column("id_last", sa.BigInteger, primary_key=True),
        sa.Column("stage", sa.String(16), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE descriptor_stage_token OWNER TO descriptor_writer")


def downgrade() -> None:
    op.drop_table("descriptor_stage_token")
