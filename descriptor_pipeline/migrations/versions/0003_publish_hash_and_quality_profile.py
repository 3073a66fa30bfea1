"""The index records what each document was built from; quality profiles for drift.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN on both dialects: a table rebuild would drop SQLite's FTS triggers
    op.add_column("descriptor_index", sa.Column("input_hash", sa.String(64)))
    op.create_table(
        "descriptor_quality_profile",
        sa.Column("partition_key", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE descriptor_quality_profile OWNER TO descriptor_writer")


def downgrade() -> None:
    op.drop_table("descriptor_quality_profile")
    with op.batch_alter_table("descriptor_index") as batch:
        batch.drop_column("input_hash")
