"""The catalog: seeding from the real fixture, configurable names, keyset chunks, links."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.catalog_config import CatalogConfig, LinkTable, ResourceTable
from descriptor_pipeline.demo.seed import fixture_records, seed_catalog
from descriptor_pipeline.id_ranges import IdRange
from descriptor_pipeline.store_engine import create_engine
from descriptor_pipeline_tests.conftest import Deployment


def test_seeding_loads_every_fixture_record_and_its_links(deployment: Deployment) -> None:
    expected = Counter(r["resource_type"] for r in fixture_records())
    catalog = deployment.catalog
    for resource_type, count in expected.items():
        assert catalog.count(resource_type) == count
    with catalog.engine.connect() as conn:
        links = conn.execute(sa.text("SELECT count(*) FROM music_track_artists")).scalar()
    assert links == sum(
        len(set(r["links"].get("artist", [])))
        for r in fixture_records()
        if r["resource_type"] == "track"
    )


def test_chunks_cover_the_range_without_gaps_and_carry_linked_names(deployment: Deployment) -> None:
    chunks = list(deployment.catalog.iter_chunks("track", IdRange(0, 999), chunk_size=97))
    # the first range also answers for ids below 1 (quarantined by the raw stage)
    assert chunks[0].span.first == IdRange(0, 999).floor and chunks[-1].span.last == 999
    for before, after in itertools.pairwise(chunks):
        assert after.span.first == before.span.last + 1
    assert all(len(c.rows) <= 97 for c in chunks)
    ids = [r["resource_id"] for c in chunks for r in c.rows]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 999  # ids 1..999
    assert any('"artists"' in r["links"] for c in chunks for r in c.rows)


def test_names_come_from_configuration(tmp_path: Path) -> None:
    """A catalog with other table and column names, in a schema-less SQLite file."""
    config = CatalogConfig(
        genre=ResourceTable(
            table="tags",
            id_column="pk",
            name_column="label",
            updated_at_column="modified",
            spotify_column="sp",
            enrichment_column="enr",
            custom_column="editorial",
        ),
        artist=ResourceTable(table="performers"),
        album=ResourceTable(table="records"),
        track=ResourceTable(table="songs"),
        genre_parent_column="parent_pk",
        artist_genres=LinkTable(table="performer_tags", from_column="performer", to_column="tag"),
        album_artists=LinkTable(table="record_performers", from_column="rec", to_column="perf"),
        track_albums=LinkTable(table="song_records", from_column="song", to_column="rec"),
        track_artists=LinkTable(table="song_performers", from_column="song", to_column="perf"),
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'other.sqlite'}")
    report = seed_catalog(engine, config)
    source = CatalogSource(engine, config)
    assert source.count("genre") == report.counts["genre"] > 1000
    (chunk,) = list(source.iter_chunks("artist", IdRange(0, 99), chunk_size=1000))
    assert len(chunk.rows) == 99
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"tags", "performers", "song_performers"} <= tables and "music_genre" not in tables


def test_untrusted_text_is_only_ever_a_bound_parameter(deployment: Deployment) -> None:
    nasty = 'Robert\'); DROP TABLE music_artist;-- "quoted" % _'
    with deployment.catalog.engine.begin() as conn:
        conn.execute(sa.text("UPDATE music_artist SET name = :n WHERE id = 1"), {"n": nasty})
    (chunk,) = list(deployment.catalog.iter_chunks("artist", IdRange(1, 1), chunk_size=10))
    assert chunk.rows[0]["name"] == nasty
    assert deployment.catalog.count("artist") > 1000


def test_dependants_find_what_embeds_a_resource(deployment: Deployment) -> None:
    with deployment.catalog.engine.connect() as conn:
        track_id, artist_id = conn.execute(
            sa.text("SELECT track_id, artist_id FROM music_track_artists LIMIT 1")
        ).one()
    found = deployment.catalog.dependants("artist", [artist_id])
    assert track_id in found["track"]


def test_id_ranges_exist_only_where_ids_do(backend_deployment: Deployment) -> None:
    """Ids 1 and 10^12 make two ranges, not 10^8 (which ran out of memory); a negative id is
    counted and reported, and makes the first range exist (it quarantines the row)."""
    dep = backend_deployment
    with dep.catalog.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM music_track_artists"))
        conn.execute(sa.text("DELETE FROM music_track_albums"))
        conn.execute(sa.text("DELETE FROM music_track"))
        for resource_id in (1, 10**12, -5):
            conn.execute(
                sa.text(
                    "INSERT INTO music_track (id, name, created_at, updated_at) "
                    "VALUES (:i, :n, :t, :t)"
                ),
                {"i": resource_id, "n": f"t{resource_id}", "t": "2026-11-02 00:00:00"},
            )
    starts, negative = dep.catalog.range_starts(1000)
    assert 10**12 in starts and 0 in starts and negative == 1
    assert len(starts) < 10  # the other types' demo ids lie below 3000
    added = dep.register(range_size=1000)
    firsts = {p.id_range.first for p in added}
    assert firsts == set(starts) and 10**12 in firsts


def test_threads_opening_one_catalog_share_it_and_its_tables(tmp_path: Path) -> None:
    """Sensor ticks evaluated in threads (`sensors.use_threads`) open the same URL at once: one
    source, and each table defined once on its MetaData (a second definition raises)."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from descriptor_pipeline.catalog import open_catalog
    from descriptor_pipeline.id_ranges import RESOURCE_TYPES

    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    threads = 8
    start = Barrier(threads)

    def first_tick(_: int) -> tuple[int, list[int]]:
        start.wait()
        source = open_catalog(url, None)
        tables = [source.resource_table(t) for t in RESOURCE_TYPES]
        tables += [source.link_table(link) for t in RESOURCE_TYPES
                   for _, link, _ in source.config.links_of(t)]  # fmt: skip
        return id(source), [id(t) for t in tables]

    try:
        with ThreadPoolExecutor(threads) as pool:
            opened = list(pool.map(first_tick, range(threads)))
    finally:
        open_catalog.cache_clear()
    assert len({source for source, _ in opened}) == 1
    assert len({tuple(tables) for _, tables in opened}) == 1
