"""Every table the code declares is created by a migration, on both dialects."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from descriptor_pipeline.store_engine import create_engine, run_migrations
from descriptor_pipeline.tables import metadata


def _migrated_tables(url: str) -> set[str]:
    engine = create_engine(url)
    assert run_migrations(engine) == "0007"
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return tables


def test_every_declared_table_is_migrated_on_sqlite(tmp_path: Path) -> None:
    tables = _migrated_tables(f"sqlite:///{tmp_path / 'index.sqlite'}")
    assert set(metadata.tables) <= tables
    assert "descriptor_index_fts" in tables  # FTS5 lives in the migration, not in metadata


def test_every_declared_table_is_migrated_on_postgres(pg_url: str) -> None:
    assert set(metadata.tables) <= _migrated_tables(pg_url)
