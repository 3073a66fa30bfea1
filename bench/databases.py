"""The benchmark's PostgreSQL databases: a fresh one per catalog size, the pipeline's tables
emptied between timed runs, and how many documents the index holds. Apart from the harness so
that bench.peers and bench.celery_scale make their databases without importing all of it."""

from __future__ import annotations

import psycopg
import sqlalchemy as sa

STAGE_TABLES = (
    "raw_descriptors",
    "normalized_descriptors",
    "descriptor_index",
    "descriptor_quarantine",
    "descriptor_refresh_queue",
    "descriptor_range_fingerprint",
    "descriptor_stage_token",
    "descriptor_quality_profile",
)


def fresh_database(admin_url: str, name: str) -> str:
    admin = sa.create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def reset_pipeline_tables(url: str) -> None:
    with psycopg.connect(dsn(url)) as conn:
        conn.execute(f"TRUNCATE {', '.join(STAGE_TABLES)}")


def count_index(url: str) -> int:
    with psycopg.connect(dsn(url)) as conn:
        return conn.execute("SELECT count(*) FROM descriptor_index").fetchone()[0]
