"""Exact (case-insensitive) name lookups: a btree on lower(name) for the search's exact branch.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX descriptor_index_lower_name ON descriptor_index (lower(name))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX descriptor_index_lower_name")
