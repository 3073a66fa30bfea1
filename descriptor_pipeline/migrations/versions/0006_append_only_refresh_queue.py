"""The refresh queue becomes an append-only log read through a sensor cursor.

Claims, leases and acknowledgements go: `refresh_queue_sensor` keeps the last sequence number it
turned into run requests in its Dagster cursor and gives each run a deterministic run_key, so a
tick that dies is simply evaluated again. Rows still queued are carried over in their order.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

QUEUE = "descriptor_refresh_queue"
OLD = "descriptor_refresh_queue_0005"


def upgrade() -> None:
    op.drop_index("descriptor_refresh_queue_claim", table_name=QUEUE)
    op.drop_index("descriptor_refresh_queue_order", table_name=QUEUE)
    op.rename_table(QUEUE, OLD)
    op.create_table(
        QUEUE,
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.execute(
        f"INSERT INTO {QUEUE} (resource_type, resource_id, reason, enqueued_at) "
        f"SELECT resource_type, resource_id, reason, enqueued_at FROM {OLD} "
        "ORDER BY enqueued_at, resource_type, resource_id"
    )
    op.drop_table(OLD)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {QUEUE} OWNER TO descriptor_writer")


def downgrade() -> None:
    op.drop_table(QUEUE)
    op.create_table(
        QUEUE,
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim_key", sa.String(128)),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("resource_type", "resource_id"),
    )
    op.create_index("descriptor_refresh_queue_claim", QUEUE, ["claim_key"])
    op.create_index("descriptor_refresh_queue_order", QUEUE, ["enqueued_at"])
