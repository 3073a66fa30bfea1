"""The canonical descriptor schema: one definition that code, docs and checks all read.

Every field names where its values may come from (source + path, in precedence order), how
sources are combined, which normalization rules apply and how much it weighs in search.
`docs/schema.md` is generated from this module (`descriptor-pipeline schema-doc`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import pyarrow as pa

from descriptor_pipeline.id_ranges import RESOURCE_TYPES

SCHEMA_VERSION = 1


class Source(StrEnum):
    """The places a descriptor value can come from, most authoritative first."""

    CUSTOM = "custom_data"  # editorial overrides
    CATALOG = "catalog"  # the catalog row's own columns (name)
    LINKS = "links"  # linked rows (an album's artists, an artist's genres)
    ENRICHMENT = "enrichment_data"  # Last.fm / MusicBrainz style payloads
    SPOTIFY = "spotify_data"  # Spotify Web API objects


# The catalog row's three JSON descriptor columns, in the order they are stored and hashed.
SOURCE_COLUMNS = ("spotify_data", "enrichment_data", "custom_data")

FieldKind = Literal["text", "text_list", "int", "flag"]
Merge = Literal["first", "union"]
Weight = Literal["A", "B", "C", "D"]
# How much a word found in a field of each weight class counts in search (docs/search.md): the
# same numbers are PostgreSQL's ts_rank_cd weights and SQLite's bm25 column weights.
SEARCH_WEIGHTS: dict[Weight, float] = {"A": 1.0, "B": 0.4, "C": 0.2, "D": 0.1}


@dataclass(frozen=True)
class SourcePath:
    """A path into one source: dotted keys, `[]` maps over a list (`tags[].name`)."""

    source: Source
    path: str
    profile: str | None = None  # "discogs@1" when a source profile put the path here

    def __str__(self) -> str:
        return f"{self.source.value}.{self.path}"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: FieldKind
    sources: tuple[SourcePath, ...]
    rules: tuple[str, ...]
    merge: Merge = "first"
    weight: Weight | None = None
    doc: str = ""


def _p(source: Source, path: str) -> SourcePath:
    return SourcePath(source, path)


C, K, L, E, S = Source.CUSTOM, Source.CATALOG, Source.LINKS, Source.ENRICHMENT, Source.SPOTIFY

TEXT_RULES = ("nfkc", "control_chars", "whitespace")
# Names are displayed: NFC keeps "™" and full-width forms; search folds them (issue 13)
NAME_RULES = ("nfc", "control_chars", "whitespace", "name_length")
LIST_RULES = (*TEXT_RULES, "casefold_dedupe", "list_length")
DESCRIPTION_RULES = (
    "strip_html",
    "strip_markup",
    "lastfm_boilerplate",
    *TEXT_RULES,
    "description_length",
)
_TAG_SOURCES = (_p(C, "tags"), _p(E, "tags[].name"), _p(S, "genres"))


def _common(extra_genre_sources: tuple[SourcePath, ...] = ()) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec(
            "name",
            "text",
            (_p(C, "name_override"), _p(K, "name"), _p(S, "name")),
            NAME_RULES,
            weight="A",
            doc="Display name; editorial override wins.",
        ),
        FieldSpec(
            "aliases",
            "text_list",
            (_p(C, "aliases"), _p(E, "aliases[].name")),
            LIST_RULES,
            merge="union",
            weight="B",
            doc="Other names, kept in their own script (no transliteration).",
        ),
        FieldSpec(
            "genres",
            "text_list",
            (*extra_genre_sources, *_TAG_SOURCES),
            (*LIST_RULES, "genre_alias"),
            merge="union",
            weight="C",
            doc="Values that map onto the catalog's genre tree, in canonical spelling.",
        ),
        FieldSpec(
            "tags",
            "text_list",
            _TAG_SOURCES,
            (*LIST_RULES, "not_genre"),
            merge="union",
            weight="C",
            doc="Free tags that are not genres of the tree.",
        ),
        FieldSpec(
            "description",
            "text",
            (
                _p(C, "editorial_description"),
                _p(E, "bio.summary"),
                _p(E, "bio.content"),
                _p(E, "wiki.summary"),
            ),
            DESCRIPTION_RULES,
            weight="D",
            doc="Editorial text first, then the enrichment bio.",
        ),
        FieldSpec(
            "hidden", "flag", (_p(C, "hidden"),), (), doc="Indexed but not returned by default."
        ),
        FieldSpec("blocked", "flag", (_p(C, "blocked"),), (), doc="Withdrawn from the index."),
    )


# Fields several resource types share, declared once.
LINKED_ARTISTS = FieldSpec(
    "artists",
    "text_list",
    (_p(L, "artists[].name"), _p(S, "artists[].name")),
    LIST_RULES,
    merge="union",
    weight="C",
    doc="Names of the linked artists (catalog links first, then the Spotify object).",
)
POPULARITY = FieldSpec("popularity", "int", (_p(S, "popularity"),), ("int_range",))

FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "genre": (
        *_common(),
        FieldSpec(
            "parent",
            "text",
            (_p(L, "parent[].name"),),
            NAME_RULES,
            weight="C",
            doc="Parent genre in the genre tree.",
        ),
    ),
    "artist": (
        *_common((_p(L, "genres[].name"),)),
        FieldSpec("country", "text", (_p(C, "country"), _p(E, "country")), TEXT_RULES, weight="D"),
        FieldSpec("disambiguation", "text", (_p(E, "disambiguation"),), TEXT_RULES, weight="D"),
        FieldSpec("artist_type", "text", (_p(E, "type"), _p(S, "type")), TEXT_RULES),
        POPULARITY,
        FieldSpec(
            "followers", "int", (_p(S, "followers.total"), _p(E, "listeners")), ("int_range",)
        ),
    ),
    "album": (
        *_common(),
        LINKED_ARTISTS,
        FieldSpec(
            "label",
            "text",
            (_p(C, "label"), _p(E, "label"), _p(S, "label")),
            TEXT_RULES,
            weight="D",
        ),
        FieldSpec(
            "release_year",
            "int",
            (_p(C, "release_date"), _p(E, "release_date"), _p(S, "release_date")),
            ("year",),
        ),
        FieldSpec("album_type", "text", (_p(S, "album_type"),), TEXT_RULES),
        POPULARITY,
    ),
    "track": (
        *_common(),
        LINKED_ARTISTS,
        FieldSpec(
            "album", "text", (_p(L, "albums[].name"), _p(S, "album.name")), NAME_RULES, weight="C"
        ),
        FieldSpec(
            "duration_ms", "int", (_p(S, "duration_ms"), _p(E, "duration_ms")), ("int_range",)
        ),
        FieldSpec("isrc", "text", (_p(S, "external_ids.isrc"), _p(E, "isrcs[]")), TEXT_RULES),
        POPULARITY,
    ),
}
assert set(FIELDS) == set(RESOURCE_TYPES)

_ARROW_TYPES: dict[FieldKind, pa.DataType] = {
    "text": pa.string(),
    "text_list": pa.list_(pa.string()),
    "int": pa.int64(),
    "flag": pa.bool_(),
}

# Columns every normalized frame carries besides its fields.
KEY_COLUMNS: tuple[pa.Field, ...] = (
    pa.field("resource_type", pa.string(), nullable=False),
    pa.field("resource_id", pa.int64(), nullable=False),
    pa.field("source_updated_at", pa.string()),
    pa.field("raw_hash", pa.string(), nullable=False),
)
TRAILING_COLUMNS: tuple[pa.Field, ...] = (
    pa.field("provenance", pa.string(), nullable=False),  # JSON: field -> source/path/rules
    pa.field("normalization_version", pa.string(), nullable=False),
    pa.field("content_hash", pa.string(), nullable=False),
)


def fields_of(resource_type: str) -> tuple[FieldSpec, ...]:
    try:
        return FIELDS[resource_type]
    except KeyError:
        raise ValueError(f"unknown resource type {resource_type!r}") from None


def normalized_arrow_schema(resource_type: str) -> pa.Schema:
    """The typed shape of `normalized_descriptors` for one resource type."""
    value_fields = [pa.field(f.name, _ARROW_TYPES[f.kind]) for f in fields_of(resource_type)]
    return pa.schema([*KEY_COLUMNS, *value_fields, *TRAILING_COLUMNS])
