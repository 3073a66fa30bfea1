"""Create the demo catalog's tables and seed them from the committed real-data fixture.

The tables are what a Django app `music` would have: integer ids, `created_at`/`updated_at`,
three JSON columns per resource (jsonb on Postgres, text on SQLite — so SQLite can also hold
the malformed JSON that real text columns sometimes do) and one through table per M2M link.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from descriptor_pipeline.catalog_config import CatalogConfig, LinkTable
from descriptor_pipeline.id_ranges import RESOURCE_TYPES

FIXTURE = Path(__file__).parent / "data" / "demo_catalog.jsonl"
SEEDED_AT = datetime(2026, 11, 1, tzinfo=UTC)  # deterministic timestamps: same seed, same rows
JsonColumn = sa.Text().with_variant(postgresql.JSONB(), "postgresql")


def catalog_metadata(config: CatalogConfig) -> sa.MetaData:
    md = sa.MetaData(schema=config.db_schema)
    for resource_type in RESOURCE_TYPES:
        cfg = config.resource(resource_type)
        columns: list[sa.Column[Any]] = [
            sa.Column(
                cfg.id_column,
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            sa.Column(cfg.name_column, sa.String(1000), nullable=False),
            sa.Column(cfg.spotify_column, JsonColumn),
            sa.Column(cfg.enrichment_column, JsonColumn),
            sa.Column(cfg.custom_column, JsonColumn),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column(
                cfg.updated_at_column, sa.DateTime(timezone=True), nullable=False, index=True
            ),
        ]
        if resource_type == "genre" and config.genre_parent_column:
            columns.append(sa.Column(config.genre_parent_column, sa.BigInteger, index=True))
        sa.Table(cfg.table, md, *columns)
    for link in _links(config):
        sa.Table(
            link.table,
            md,
            sa.Column(
                link.order_column or "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            sa.Column(link.from_column, sa.BigInteger, nullable=False, index=True),
            sa.Column(link.to_column, sa.BigInteger, nullable=False, index=True),
            sa.UniqueConstraint(link.from_column, link.to_column),
        )
    return md


def _links(config: CatalogConfig) -> list[LinkTable]:
    return [config.artist_genres, config.album_artists, config.track_albums, config.track_artists]


def fixture_records(path: Path = FIXTURE) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


@dataclass
class SeedReport:
    counts: dict[str, int]
    links: dict[str, int]
    seconds: float


def seed_catalog(
    engine: sa.Engine,
    config: CatalogConfig | None = None,
    records: Iterator[dict[str, Any]] | None = None,
    replace: bool = True,
) -> SeedReport:
    """(Re)create the catalog tables and load the fixture; ids are kept as in the fixture."""
    import time

    started = time.perf_counter()
    config = config or CatalogConfig()
    md = catalog_metadata(config)
    if replace:
        md.drop_all(engine)
    md.create_all(engine)
    if engine.dialect.name == "postgresql":
        _grant_catalog_reads(engine, md)
    encode = (lambda v: v) if engine.dialect.name == "postgresql" else _json_text
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in RESOURCE_TYPES}
    link_rows: dict[str, list[dict[str, Any]]] = {link.table: [] for link in _links(config)}
    link_for = {
        ("artist", "genre"): config.artist_genres,
        ("album", "artist"): config.album_artists,
        ("track", "album"): config.track_albums,
        ("track", "artist"): config.track_artists,
    }
    for record in records if records is not None else fixture_records():
        resource_type = record["resource_type"]
        cfg = config.resource(resource_type)
        stamp = SEEDED_AT + timedelta(seconds=int(record["id"]))
        row = {
            cfg.id_column: record["id"],
            cfg.name_column: record["name"],
            cfg.spotify_column: encode(record.get("spotify_data")),
            cfg.enrichment_column: encode(record.get("enrichment_data")),
            cfg.custom_column: encode(record.get("custom_data")),
            "created_at": stamp,
            cfg.updated_at_column: stamp,
        }
        if resource_type == "genre" and config.genre_parent_column:
            row[config.genre_parent_column] = record.get("parent_id")
        rows[resource_type].append(row)
        for target_type, ids in (record.get("links") or {}).items():
            link = link_for[(resource_type, target_type)]
            for target_id in dict.fromkeys(ids):
                link_rows[link.table].append(
                    {link.from_column: record["id"], link.to_column: target_id}
                )
    with engine.begin() as conn:
        for resource_type in RESOURCE_TYPES:
            if rows[resource_type]:
                conn.execute(
                    md.tables[_qualified(config, config.resource(resource_type).table)].insert(),
                    rows[resource_type],
                )
        for table_name, values in link_rows.items():
            if values:
                conn.execute(md.tables[_qualified(config, table_name)].insert(), values)
        if engine.dialect.name == "postgresql":
            _advance_sequences(conn, md)
    return SeedReport(
        {t: len(v) for t, v in rows.items()},
        {t: len(v) for t, v in link_rows.items()},
        time.perf_counter() - started,
    )


def _advance_sequences(conn: sa.Connection, md: sa.MetaData) -> None:
    """Ids were loaded explicitly: move each serial past them, as a Django loaddata would."""
    quote = conn.dialect.identifier_preparer.format_table
    for table in md.sorted_tables:
        (pk,) = table.primary_key.columns
        conn.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence(:t, :c), "
                f"COALESCE((SELECT max({pk.name}) FROM {quote(table)}), 0) + 1, false)"
            ),
            {"t": quote(table), "c": pk.name},
        )


def _grant_catalog_reads(engine: sa.Engine, md: sa.MetaData) -> None:
    """The pipeline's writer role reads the catalog; nothing else (when the role exists)."""
    with engine.begin() as conn:
        exists = conn.execute(
            sa.text("SELECT 1 FROM pg_roles WHERE rolname = 'descriptor_writer'")
        ).first()
        if exists:
            quote = engine.dialect.identifier_preparer.format_table
            for table in md.sorted_tables:
                conn.execute(sa.text(f"GRANT SELECT ON {quote(table)} TO descriptor_writer"))


def _qualified(config: CatalogConfig, table: str) -> str:
    return f"{config.db_schema}.{table}" if config.db_schema else table


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def inject_bad_rows(engine: sa.Engine, config: CatalogConfig | None = None) -> list[str]:
    """Add the kinds of bad rows real catalogs have, to show quarantine in the demo.

    Each gets a name saying what is wrong with it; none is real music metadata.
    """
    config = config or CatalogConfig()
    md = catalog_metadata(config)
    now = SEEDED_AT
    described = []
    with engine.begin() as conn:

        def add(resource_type: str, name: str, **json_columns: Any) -> None:
            cfg = config.resource(resource_type)
            table = md.tables[_qualified(config, cfg.table)]
            values = {cfg.name_column: name, "created_at": now, cfg.updated_at_column: now}
            for key, value in json_columns.items():
                values[getattr(cfg, f"{key}_column")] = value
            conn.execute(table.insert().values(values))
            described.append(f"{resource_type}: {name[:60]}")

        pg = engine.dialect.name == "postgresql"
        if not pg:  # jsonb cannot hold malformed JSON; a text column can
            add("artist", "[injected] malformed spotify_data", spotify='{"name": "unterminated')
        add(
            "album",
            "[injected] popularity is a word",
            spotify={"popularity": "very high"} if pg else '{"popularity": "very high"}',
        )
        add("track", "[injected] oversized name " + "x" * 600)
    return described
