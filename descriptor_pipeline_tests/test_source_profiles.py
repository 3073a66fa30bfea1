"""Source profiles: the shipped providers' payload shapes, read from examples shaped after each
provider's published API documentation, and the clear errors a bad profile gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from descriptor_pipeline import normalization as n
from descriptor_pipeline.rules import GenreVocabulary, NormalizationContext
from descriptor_pipeline.source_profiles import (
    SHIPPED,
    ProfileError,
    apply_profiles,
    fingerprint,
    load_profile,
)
from descriptor_pipeline_tests.conftest import Deployment, metadata_of
from descriptor_pipeline_tests.test_assets import index_rows, json_param

VOCAB = GenreVocabulary.from_names(["pop", "rock", "electronic", "industrial rock", "synth-pop"])


def context(*names: str) -> NormalizationContext:
    profiles = [load_profile(name) for name in names]
    return NormalizationContext(VOCAB, apply_profiles(profiles), fingerprint(profiles))


def normalize(resource_type: str, ctx: NormalizationContext, **documents: Any) -> dict[str, Any]:
    row = {"resource_id": 1, "name": documents.pop("name", "Catalog Name"), "raw_hash": "h",
           "source_updated_at": None, "links": "{}", "spotify_data": None,
           "enrichment_data": None, "custom_data": None}  # fmt: skip
    for column, document in documents.items():
        row[column] = json.dumps(document)
    records, rejections = n.normalize_rows(resource_type, [row], ctx)
    assert not rejections, rejections
    record = records[0]
    record["provenance"] = orjson.loads(record["provenance"])
    return record


# https://www.discogs.com/developers/#page:database,header:database-artist (example response,
# trimmed), plus one `aliases` entry: Discogs aliases are other artists' pages
DISCOGS_ARTIST = {
    "id": 108713,
    "name": "Nickelback",
    "namevariations": ["Nickleback"],
    "aliases": [{"id": 1, "name": "A Pseudonym With Its Own Page"}],
    "profile": "Nickelback is a Canadian rock band from Hanna, [a=Alberta Rock], formed in 1995.",
    "members": [{"active": True, "id": 270222, "name": "Chad Kroeger"}],
}
# https://www.discogs.com/developers/#page:database,header:database-release (example, trimmed)
DISCOGS_RELEASE = {
    "id": 249504,
    "title": "Never Gonna Give You Up",
    "year": 1987,
    "artists": [{"id": 72872, "name": "Rick Astley"}],
    "extraartists": [{"id": 118541, "name": "Me Co", "role": "Design"}],
    "labels": [{"catno": "PB 41447", "id": 895, "name": "RCA"}],
    "genres": ["Electronic", "Pop"],
    "styles": ["Synth-pop", "Euro House"],
    "notes": 'UK Release has a black label with the text "Manufactured In England".',
}


def test_discogs_names_variations_not_pseudonyms_and_keeps_credits() -> None:
    ctx = context("discogs")
    artist = normalize("artist", ctx, name="Nickelback", enrichment_data=DISCOGS_ARTIST)
    assert artist["aliases"] == ["Nickleback"]  # not the pseudonym with its own page
    assert artist["description"] == (
        "Nickelback is a Canadian rock band from Hanna, Alberta Rock, formed in 1995."
    )
    assert artist["provenance"]["description"]["profile"] == "discogs@1"
    assert artist["provenance"]["aliases"]["profiles"] == {
        "enrichment_data.namevariations[]": "discogs@1"
    }
    album = normalize("album", ctx, name="Never Gonna Give You Up", enrichment_data=DISCOGS_RELEASE)
    assert album["artists"] == ["Rick Astley", "Me Co"]  # credits kept, though not linked
    assert album["label"] == "RCA" and album["release_year"] == 1987
    assert album["genres"] == ["electronic", "pop", "synth-pop"]
    assert album["tags"] == ["Euro House"]
    assert album["provenance"]["release_year"]["path"] == "enrichment_data.year"


# https://www.last.fm/api/show/artist.getInfo (JSON response shape, trimmed)
LASTFM_ARTIST = {
    "artist": {
        "name": "Cher",
        "mbid": "bfcc6d75-a6a5-4bc6-8282-47aec8531818",
        "stats": {"listeners": "1385870", "playcount": "24339405"},
        "tags": {"tag": [{"name": "pop", "url": "https://www.last.fm/tag/pop"},
                         {"name": "female vocalists", "url": "https://www.last.fm/tag/x"}]},
        "bio": {"summary": "Cher is an American singer and actress. "
                           '<a href="https://www.last.fm/music/Cher">Read more on Last.fm</a>'},
    }
}  # fmt: skip


def test_lastfm_reads_the_get_info_response_as_the_api_returns_it() -> None:
    artist = normalize("artist", context("lastfm"), name="Cher", enrichment_data=LASTFM_ARTIST)
    assert artist["genres"] == ["pop"] and artist["tags"] == ["female vocalists"]
    assert artist["followers"] == 1385870
    assert artist["description"] == "Cher is an American singer and actress."
    # without the profile the wrapped response feeds nothing: the default paths are flat
    assert normalize("artist", context(), enrichment_data=LASTFM_ARTIST)["description"] is None


# https://musicbrainz.org/doc/MusicBrainz_API (artist lookup JSON, inc=aliases+genres+tags)
MUSICBRAINZ_ARTIST = {
    "id": "b7ffd2af-418f-4be2-bdd1-22f8b48613da",
    "name": "Nine Inch Nails",
    "type": "Group",
    "country": "US",
    "disambiguation": "",
    "aliases": [{"name": "NIN", "sort-name": "NIN", "locale": None, "primary": None}],
    "genres": [{"name": "industrial rock", "count": 12}],
    "tags": [{"name": "industrial rock", "count": 12}, {"name": "american", "count": 4}],
}
MUSICBRAINZ_RECORDING = {
    "title": "Hurt",
    "length": 373000,
    "isrcs": ["USIR19400321"],
    "artist-credit": [{"name": "Nine Inch Nails", "joinphrase": ""}],
    "releases": [{"title": "The Downward Spiral"}],
}


def test_musicbrainz_reads_hyphenated_keys_and_lists() -> None:
    ctx = context("musicbrainz")
    artist = normalize("artist", ctx, enrichment_data=MUSICBRAINZ_ARTIST)
    assert (artist["aliases"], artist["artist_type"], artist["country"]) == (["NIN"], "Group", "US")
    assert artist["genres"] == ["industrial rock"] and artist["tags"] == ["american"]
    track = normalize("track", ctx, enrichment_data=MUSICBRAINZ_RECORDING)
    assert track["artists"] == ["Nine Inch Nails"] and track["album"] == "The Downward Spiral"
    assert (track["duration_ms"], track["isrc"]) == (373000, "USIR19400321")


# https://developer.spotify.com/documentation/web-api/reference/get-an-artist (response shape)
SPOTIFY_ARTIST = {
    "id": "0TnOYISbd1XYRBk9myaseg",
    "name": "Pitbull",
    "type": "artist",
    "genres": ["dance pop", "pop"],
    "popularity": 80,
    "followers": {"href": None, "total": 10962185},
}


def test_spotify_profile_matches_the_object_and_not_its_type_field() -> None:
    artist = normalize("artist", context("spotify"), spotify_data=SPOTIFY_ARTIST)
    assert (artist["popularity"], artist["followers"]) == (80, 10962185)
    assert artist["genres"] == ["pop"] and artist["tags"] == ["dance pop"]
    assert artist["artist_type"] is None  # "artist" is the object's type, not person/group


def test_a_profile_change_changes_input_hashes_but_only_affected_content() -> None:
    plain, discogs = context(), context("discogs")
    assert n.input_hash("h", plain) != n.input_hash("h", discogs)
    untouched = {"custom_data": {"tags": ["rock"]}}  # nothing in the enrichment column
    a = normalize("artist", plain, **untouched)
    b = normalize("artist", discogs, **untouched)
    assert a["content_hash"] == b["content_hash"]
    changed = normalize("artist", discogs, enrichment_data=DISCOGS_ARTIST)
    assert (
        changed["content_hash"]
        != normalize("artist", plain, enrichment_data=DISCOGS_ARTIST)["content_hash"]
    )


def test_every_shipped_profile_loads() -> None:
    shipped = sorted(p.stem for p in SHIPPED.glob("*.yaml"))
    assert shipped == ["discogs", "lastfm", "musicbrainz", "spotify"]
    for name in shipped:
        assert load_profile(name).tag == f"{name}@1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nversion: 1\nsource: enrichment_data\nfields: {artist: {nope: [a]}}",
         "artist has no field 'nope'"),
        ("name: x\nversion: 1\nsource: enrichment_data\nfields: {band: {name: [a]}}",
         "unknown resource type 'band'"),
        ("name: x\nversion: 1\nsource: enrichment_data\nfields: {artist: {name: ['a..b']}}",
         "malformed path 'a..b'"),
        ("name: x\nversion: 1\nsource: other_column\nfields: {}", "source: Input should be"),
        ("name: x\nversion: 1\nsource: [unclosed", "not valid YAML"),
    ],
)  # fmt: skip
def test_a_bad_profile_says_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message):
        load_profile(str(path))


def test_unknown_names_and_two_profiles_for_one_column_are_refused() -> None:
    with pytest.raises(ProfileError, match="no source profile named 'discog'; shipped: discogs"):
        load_profile("discog")
    with pytest.raises(ProfileError, match="same column"):
        apply_profiles([load_profile("discogs"), load_profile("lastfm")])


def test_a_profile_named_in_the_mapping_feeds_the_published_documents(
    backend_deployment: Deployment, tmp_path: Path
) -> None:
    """Through the real assets: the mapping file names the profile, the Discogs release's
    credits and label are published with the profile in their provenance, and dropping the
    profile again rewrites only documents whose values it changed."""
    dep = backend_deployment
    album_id = 7  # a demo album with no enrichment payload of its own
    with dep.catalog.engine.begin() as conn:
        conn.execute(
            sa.text(
                f"UPDATE music_album SET enrichment_data = {json_param(dep, 'v')} WHERE id = 7"
            ),
            {"v": json.dumps(DISCOGS_RELEASE)},
        )
        without_payload = (
            conn.execute(
                sa.text("SELECT id FROM music_album WHERE enrichment_data IS NULL AND id <> 7")
            )
            .scalars()
            .all()
        )
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"source_profiles": ["discogs"]}))
    dep.mapping_file = str(mapping)
    (partition,) = [
        p for p in dep.register() if p.resource_type == "album" and album_id in p.id_range
    ]
    assert dep.materialize(partition).success
    document = published_document(dep, album_id)
    assert {"Rick Astley", "Me Co"} <= set(document["fields"]["artists"]["value"])
    assert document["fields"]["label"] == {
        "value": "RCA", "source": "enrichment_data", "path": "enrichment_data.labels[].name",
        "rules": ["nfkc@1", "control_chars@2", "whitespace@1"], "profile": "discogs@1",
    }  # fmt: skip
    before = index_rows(dep)

    dep.mapping_file = None
    result = dep.materialize(partition)
    after = index_rows(dep)
    assert "Me Co" not in published_document(dep, album_id)["fields"]["artists"]["value"]
    changed = {key for key in after if after[key] != before.get(key)}
    assert ("album", album_id) in changed
    # albums without an enrichment payload read nothing through the profile: not rewritten
    assert not changed & {("album", i) for i in without_payload}
    assert metadata_of(result, "descriptor_index")["rows_written"] == len(changed)


def published_document(dep: Deployment, album_id: int) -> dict[str, Any]:
    with dep.store.engine.connect() as conn:
        text = conn.execute(
            sa.text(
                "SELECT document FROM descriptor_index WHERE resource_type = 'album' "
                "AND resource_id = :i"
            ),
            {"i": album_id},
        ).scalar_one()
    return text if isinstance(text, dict) else json.loads(text)


def test_a_bad_profile_fails_the_run_once_with_the_fix(
    deployment: Deployment, tmp_path: Path
) -> None:
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"source_profiles": ["dicsogs"]}))
    deployment.mapping_file = str(mapping)
    (partition, *_) = deployment.register()
    result = deployment.materialize(partition, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "no source profile named 'dicsogs'" in failure.step_failure_data.error.message
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    run = deployment.instance.get_run_by_id(result.run_id)
    assert run.tags["dagster/retry_on_asset_or_op_failure"] == "false"
