"""Where descriptors live in a catalog: table and column names, and the link tables.

A deployment points the pipeline at its own catalog with a JSON file of this shape
(`DESCRIPTOR_CATALOG_MAPPING`); the defaults are the demo's Django app `music`.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel


class ResourceTable(BaseModel):
    """A resource's table. A column set to null is absent from this catalog: the pipeline
    does without it (an empty source; without `updated_at` no incremental scan of the type)."""

    table: str
    id_column: str = "id"
    name_column: str = "name"
    updated_at_column: str | None = "updated_at"
    spotify_column: str | None = "spotify_data"
    enrichment_column: str | None = "enrichment_data"
    custom_column: str | None = "custom_data"


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
    artist_genres: LinkTable | None = LinkTable(
        table="music_artist_genres", from_column="artist_id", to_column="genre_id"
    )
    album_artists: LinkTable | None = LinkTable(
        table="music_album_artists", from_column="album_id", to_column="artist_id"
    )
    track_albums: LinkTable | None = LinkTable(
        table="music_track_albums", from_column="track_id", to_column="album_id"
    )
    track_artists: LinkTable | None = LinkTable(
        table="music_track_artists", from_column="track_id", to_column="artist_id"
    )

    # The JSON columns' payload shapes (`source_profiles.py`): shipped profile names
    # (`discogs`) or YAML files, relative to this file; one list for every type, or a list per
    # type (`{"album": ["discogs"], "track": ["musicbrainz"]}`). Empty: `schema.py`'s defaults.
    source_profiles: list[str] | dict[str, list[str]] = []

    @classmethod
    def from_file(cls, path: str | Path | None) -> CatalogConfig:
        if not path:
            return cls()
        config = cls.model_validate(json.loads(Path(path).read_text()))
        here = Path(path).resolve().parent

        def located(names: list[str]) -> list[str]:
            return [str(here / n) if Path(n).suffix and not Path(n).is_absolute() else n
                    for n in names]  # fmt: skip

        profiles = config.source_profiles
        config.source_profiles = (
            {t: located(names) for t, names in profiles.items()}
            if isinstance(profiles, dict)
            else located(profiles)
        )
        return config

    def profiles_by_type(self) -> dict[str, list[str]]:
        """The source profiles each resource type's payloads follow."""
        profiles = self.source_profiles
        if isinstance(profiles, dict):
            unknown = set(profiles) - {"genre", "artist", "album", "track"}
            if unknown:
                raise ValueError(f"source_profiles names unknown resource types {sorted(unknown)}")
            return {t: list(profiles.get(t, [])) for t in ("genre", "artist", "album", "track")}
        return {t: list(profiles) for t in ("genre", "artist", "album", "track")}

    def resource(self, resource_type: str) -> ResourceTable:
        return getattr(self, resource_type)

    def links_of(self, resource_type: str) -> list[tuple[str, LinkTable, str]]:
        """(name in the raw row, link table, linked resource type) for one resource type;
        a link table the catalog does not have (null in the mapping) is left out."""
        declared: dict[str, list[tuple[str, LinkTable | None, str]]] = {
            "genre": [],
            "artist": [("genres", self.artist_genres, "genre")],
            "album": [("artists", self.album_artists, "artist")],
            "track": [
                ("albums", self.track_albums, "album"),
                ("artists", self.track_artists, "artist"),
            ],
        }
        return [(k, link, t) for k, link, t in declared[resource_type] if link is not None]

    def absent(self, resource_type: str) -> list[str]:
        """What this catalog does not have for the type, as run metadata says it."""
        cfg = self.resource(resource_type)
        out = [
            f"{column} column"
            for column, name in (
                ("updated_at", cfg.updated_at_column),
                ("spotify_data", cfg.spotify_column),
                ("enrichment_data", cfg.enrichment_column),
                ("custom_data", cfg.custom_column),
            )
            if name is None
        ]
        links = {"artist": ["artist_genres"], "album": ["album_artists"],
                 "track": ["track_albums", "track_artists"]}.get(resource_type, [])  # fmt: skip
        out += [f"{name} link table" for name in links if getattr(self, name) is None]
        if resource_type == "genre" and not self.genre_parent_column:
            out.append("genre parent column")
        return out
