"""Alembic environment: always run on a connection handed over by `run_migrations`."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, transactional_ddl=True, version_table="descriptor_pipeline_version"
)
with context.begin_transaction():
    context.run_migrations()
