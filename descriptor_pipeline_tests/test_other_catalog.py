"""A catalog that is not the demo, through the real assets on both backends: other table and
column names, Discogs- and MusicBrainz-shaped payloads, no editorial column, no artist<->genre
table, no `updated_at` on one type, and credits of artists the catalog does not hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.catalog import open_catalog
from descriptor_pipeline.defs.partitions import register_id_ranges
from descriptor_pipeline.dry_run import profile_catalog
from descriptor_pipeline.refresh.changes import scan_changes
from descriptor_pipeline.tables import descriptor_index
from descriptor_pipeline_tests.conftest import Deployment, metadata_of

MAPPING = {
    "genre": {"table": "shop_style", "name_column": "title", "custom_column": None,
              "spotify_column": None},
    "artist": {"table": "shop_performer", "name_column": "display_name", "custom_column": None,
               "spotify_column": None, "enrichment_column": "discogs"},
    "album": {"table": "shop_release", "name_column": "title", "custom_column": None,
              "spotify_column": None, "enrichment_column": "discogs",
              "updated_at_column": None},
    "track": {"table": "shop_recording", "name_column": "title", "custom_column": None,
              "spotify_column": None, "enrichment_column": "mb"},
    "genre_parent_column": None,
    "artist_genres": None,
    "album_artists": {"table": "shop_release_performers", "from_column": "release_id",
                      "to_column": "performer_id", "order_column": None},
    "track_albums": None,
    "track_artists": {"table": "shop_recording_performers", "from_column": "recording_id",
                      "to_column": "performer_id", "order_column": None},
    "source_profiles": {"artist": ["discogs"], "album": ["discogs"], "track": ["musicbrainz"]},
}  # fmt: skip
STAMP = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _create(engine: sa.Engine) -> None:
    md = sa.MetaData()
    text = sa.JSON if engine.dialect.name == "postgresql" else sa.Text
    sa.Table("shop_style", md, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("title", sa.Text), sa.Column("enrichment_data", text),
             sa.Column("updated_at", sa.DateTime(timezone=True)))  # fmt: skip
    sa.Table("shop_performer", md, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("display_name", sa.Text), sa.Column("discogs", text),
             sa.Column("updated_at", sa.DateTime(timezone=True)))  # fmt: skip
    sa.Table("shop_release", md, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("title", sa.Text), sa.Column("discogs", text))  # fmt: skip
    sa.Table("shop_recording", md, sa.Column("id", sa.BigInteger, primary_key=True),
             sa.Column("title", sa.Text), sa.Column("mb", text),
             sa.Column("updated_at", sa.DateTime(timezone=True)))  # fmt: skip
    for name, left in (("shop_release_performers", "release_id"),
                       ("shop_recording_performers", "recording_id")):  # fmt: skip
        sa.Table(name, md, sa.Column(left, sa.BigInteger), sa.Column("performer_id", sa.BigInteger))
    md.create_all(engine)
    doc = (lambda v: v) if engine.dialect.name == "postgresql" else json.dumps
    with engine.begin() as conn:

        def insert(table: str, rows: list[dict[str, Any]]) -> None:
            conn.execute(sa.Table(table, md).insert(), rows)

        insert(
            "shop_style",
            [
                {"id": 1, "title": "Rock", "enrichment_data": None, "updated_at": STAMP},
                {"id": 2, "title": "Synth-pop", "enrichment_data": None, "updated_at": STAMP},
            ],
        )
        insert(
            "shop_performer",
            [
                {
                    "id": 10,
                    "display_name": "Rick Astley",
                    "updated_at": STAMP,
                    "discogs": doc(
                        {
                            "namevariations": ["R. Astley"],
                            "realname": "Richard Paul Astley",
                            "aliases": [{"id": 99, "name": "Not An Alias"}],
                            "profile": "English singer. Produced by [a=Stock Aitken Waterman].",
                        }
                    ),
                },
                {"id": 11, "display_name": "Various", "updated_at": STAMP, "discogs": None},
            ],
        )
        insert(
            "shop_release",
            [
                {
                    "id": 20,
                    "title": "Whenever You Need Somebody",
                    "discogs": doc(
                        {
                            "year": 1987,
                            "labels": [{"name": "RCA"}],
                            "genres": ["Pop"],
                            "styles": ["Synth-pop", "Euro House"],
                            "artists": [{"name": "Rick Astley"}],
                            "extraartists": [{"name": "Stock Aitken Waterman", "role": "Producer"}],
                            "notes": "<p>First album.</p><script>x()</script>",
                        }
                    ),
                },
                {
                    "id": 21,
                    "title": "Credited Only",
                    "discogs": doc(
                        {"year": 1990, "artists": [{"name": "An Artist Not In The Catalog"}]}
                    ),
                },
            ],
        )
        insert(
            "shop_recording",
            [
                {
                    "id": 30,
                    "title": "Never Gonna Give You Up",
                    "updated_at": STAMP,
                    "mb": doc(
                        {
                            "length": 213000,
                            "isrcs": ["GBARL9300135"],
                            "releases": [{"title": "Whenever You Need Somebody"}],
                            "artist-credit": [{"name": "Rick Astley"}],
                        }
                    ),
                },
            ],
        )
        insert("shop_release_performers", [{"release_id": 20, "performer_id": 10}])
        insert("shop_recording_performers", [{"recording_id": 30, "performer_id": 10}])


@pytest.fixture(params=["sqlite", "postgres"])
def other(
    request: pytest.FixtureRequest, tmp_path: Path, instance: dg.DagsterInstance
) -> Deployment:
    if request.param == "sqlite":
        dep = Deployment(f"sqlite:///{tmp_path / 'shop.sqlite'}",
                         f"sqlite:///{tmp_path / 'index.sqlite'}", instance)  # fmt: skip
    else:
        url = request.getfixturevalue("pg_url")
        dep = Deployment(url, url, instance)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    dep.mapping_file = str(mapping)
    _create(open_catalog(dep.catalog_url, None).engine)
    return dep


def _documents(dep: Deployment) -> dict[str, dict[str, Any]]:
    with dep.store.engine.connect() as conn:
        rows = conn.execute(sa.select(descriptor_index.c.document_key, descriptor_index.c.document))
        return {k: d if isinstance(d, dict) else json.loads(d) for k, d in rows}


def _values(document: dict[str, Any]) -> dict[str, Any]:
    return {name: f["value"] for name, f in document["fields"].items()}


def test_the_other_catalog_is_indexed_through_the_assets(other: Deployment) -> None:
    register_id_ranges(other.instance, other.catalog, 1000)
    results = other.backfill()
    assert all(r.success for r in results)
    without = {
        r.asset_materializations_for_node("raw_descriptors")[0].partition.split("|")[1]: (
            metadata_of(r, "raw_descriptors")["catalog_without"]
        )
        for r in results
    }
    assert without == {
        "genre": "spotify_data column, custom_data column, genre parent column",
        "artist": "spotify_data column, custom_data column, artist_genres link table",
        "album": "updated_at column, spotify_data column, custom_data column",
        "track": "spotify_data column, custom_data column, track_albums link table",
    }
    docs = {k: _values(d) for k, d in _documents(other).items()}
    assert set(docs) == {"genre:1", "genre:2", "artist:10", "artist:11", "album:20",
                         "album:21", "track:30"}  # fmt: skip
    assert docs["artist:10"]["aliases"] == ["R. Astley", "Richard Paul Astley"]
    assert docs["artist:10"]["description"] == "English singer. Produced by Stock Aitken Waterman."
    album = docs["album:20"]
    assert album["artists"] == ["Rick Astley", "Stock Aitken Waterman"]
    assert (album["label"], album["release_year"]) == ("RCA", 1987)
    assert album["genres"] == ["Synth-pop"] and album["tags"] == ["Euro House", "Pop"]
    assert album["description"] == "First album."
    assert docs["album:21"]["artists"] == ["An Artist Not In The Catalog"]  # credit kept
    track = docs["track:30"]  # a MusicBrainz recording: its own profile
    assert track["artists"] == ["Rick Astley"] and track["album"] == "Whenever You Need Somebody"
    assert (track["isrc"], track["duration_ms"]) == ("GBARL9300135", 213000)


def test_a_type_without_updated_at_is_not_scanned_and_the_dry_run_reads_it(
    other: Deployment,
) -> None:
    source = other.catalog
    changes, position = scan_changes(source, "album", None)
    assert (changes, position) == ([], None)
    report = profile_catalog(source, ["album", "artist"], 10)
    assert report["album"]["rows_normalized"] == 2
    assert report["album"]["fields"]["label"]["source_coverage"] == {
        "enrichment_data.labels[].name": 0.5
    }
    assert report["artist"]["fields"]["aliases"]["coverage"] == 0.5
