"""Every table the code declares is created by a migration, on both dialects."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from descriptor_pipeline.store_engine import MissingTablesError, create_engine, run_migrations
from descriptor_pipeline.tables import metadata


def _migrated_tables(url: str) -> set[str]:
    engine = create_engine(url)
    assert run_migrations(engine) == "0011"
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return tables


def test_every_declared_table_is_migrated_on_sqlite(tmp_path: Path) -> None:
    tables = _migrated_tables(f"sqlite:///{tmp_path / 'index.sqlite'}")
    assert set(metadata.tables) <= tables
    assert "descriptor_index_fts" in tables  # FTS5 lives in the migration, not in metadata


def test_every_declared_table_is_migrated_on_postgres(pg_url: str) -> None:
    assert set(metadata.tables) <= _migrated_tables(pg_url)


def test_a_missing_table_names_itself_its_database_and_what_to_run(tmp_path: Path) -> None:
    """A dropped table is reported by name, with the database and the command, not as a bug."""
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    engine = create_engine(url)
    run_migrations(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE descriptor_quarantine"))
    with pytest.raises(MissingTablesError) as error:
        run_migrations(engine)
    message = str(error.value)
    assert "no table descriptor_quarantine" in message and url in message
    assert "at migration 0011 of 0011" in message
    assert "rebuild the index database" in message and "descriptor-pipeline migrate" in message
    engine.dispose()


def test_a_database_behind_the_code_is_told_to_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'index.sqlite'}"
    engine = create_engine(url)
    with pytest.raises(MissingTablesError) as error:
        run_migrations(engine, "0001")  # the refresh tables come with 0002
    message = str(error.value)
    assert "descriptor_refresh_requests" in message and "at migration 0001 of 0011" in message
    assert f"Run `descriptor-pipeline migrate` with DESCRIPTOR_INDEX_URL={url}" in message
    engine.dispose()
