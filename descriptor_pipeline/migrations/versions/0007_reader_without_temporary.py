"""The reader role may not create temporary tables.

PostgreSQL grants TEMPORARY on every database to PUBLIC, so revoking it from the reader alone
changes nothing: it is revoked from PUBLIC and the reader, and granted to the writer, whose
COPY staging tables are temporary.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _on_database(statement: str) -> None:
    op.execute(f"DO $$ BEGIN EXECUTE format('{statement}', current_database()); END $$")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _on_database("GRANT TEMPORARY ON DATABASE %I TO descriptor_writer")
    _on_database("REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC, descriptor_reader")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _on_database("GRANT TEMPORARY ON DATABASE %I TO PUBLIC, descriptor_reader")
