"""Where descriptors live in a catalog: table and column names, and the link tables.

A deployment points the pipeline at its own catalog with a JSON file of this shape
(`DESCRIPTOR_CATALOG_MAPPING`); the defaults are the demo's Django app `music`.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel


class ResourceTable(BaseModel):
    table: str
    id_column: str = "id"
    name_column: str = "name"
    updated_at_column: str = "updated_at"
    spotify_column: str = "spotify_data"
    enrichment_column: str = "enrichment_data"
    custom_column: str = "custom_data"


class LinkTable(BaseModel):
    """A many-to-many table (Django's `ManyToManyField` through table)."""

    table: str
    from_column: str
    to_column: str
    order_column: str | None = "id"


class CatalogConfig(BaseModel):
    """Where descriptors live in the catalog. Defaults: the demo's Django app `music`."""

    db_schema: str | None = None
    genre: ResourceTable = ResourceTable(table="music_genre")
    artist: ResourceTable = ResourceTable(table="music_artist")
    album: ResourceTable = ResourceTable(table="music_album")
    track: ResourceTable = ResourceTable(table="music_track")
    genre_parent_column: str | None = "parent_id"
    artist_genres: LinkTable = LinkTable(
        table="music_artist_genres", from_column="artist_id", to_column="genre_id"
    )
    album_artists: LinkTable = LinkTable(
        table="music_album_artists", from_column="album_id", to_column="artist_id"
    )
    track_albums: LinkTable = LinkTable(
        table="music_track_albums", from_column="track_id", to_column="album_id"
    )
    track_artists: LinkTable = LinkTable(
        table="music_track_artists", from_column="track_id", to_column="artist_id"
    )

    # The JSON columns' payload shapes (`source_profiles.py`): shipped profile names
    # (`discogs`) or YAML files, relative to this file. Empty: the defaults of `schema.py`.
    source_profiles: list[str] = []

    @classmethod
    def from_file(cls, path: str | Path | None) -> CatalogConfig:
        if not path:
            return cls()
        config = cls.model_validate(json.loads(Path(path).read_text()))
        here = Path(path).resolve().parent
        config.source_profiles = [
            str(here / p) if Path(p).suffix and not Path(p).is_absolute() else p
            for p in config.source_profiles
        ]
        return config

    def resource(self, resource_type: str) -> ResourceTable:
        return getattr(self, resource_type)

    def links_of(self, resource_type: str) -> list[tuple[str, LinkTable, str]]:
        """(name in the raw row, link table, linked resource type) for one resource type."""
        return {
            "genre": [],
            "artist": [("genres", self.artist_genres, "genre")],
            "album": [("artists", self.album_artists, "artist")],
            "track": [
                ("albums", self.track_albums, "album"),
                ("artists", self.track_artists, "artist"),
            ],
        }[resource_type]
