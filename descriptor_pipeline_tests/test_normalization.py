"""Normalization rules on real tricky strings, provenance and precedence (no DB, no Dagster)."""

from __future__ import annotations

import json

import orjson
import pytest

from descriptor_pipeline import normalization as n
from descriptor_pipeline import rules as r
from descriptor_pipeline.demo.seed import fixture_records

VOCAB = r.GenreVocabulary.from_names(["hip hop", "rock", "drum and bass", "art pop", "shoegaze"])
CTX = r.NormalizationContext(VOCAB)


def raw_row(resource_id: int = 1, name: str | None = "Name", **sources: object) -> dict:
    row = {
        "resource_id": resource_id,
        "name": name,
        "raw_hash": f"h{resource_id}",
        "source_updated_at": None,
        "links": "{}",
    }
    for column in ("spotify_data", "enrichment_data", "custom_data"):
        value = sources.get(column)
        row[column] = None if value is None else json.dumps(value, ensure_ascii=False)
    if "links" in sources:
        row["links"] = json.dumps(sources["links"])
    return row


def _fns(*names: str) -> tuple:
    """The functions of these rules, as a field plan holds them."""
    return tuple(n.RULES[name].fn for name in names)


def normalize_one(resource_type: str, row: dict) -> dict:
    records, rejections = n.normalize_rows(resource_type, [row], CTX)
    assert not rejections, rejections
    (record,) = records
    record["provenance"] = orjson.loads(record["provenance"])
    return record


@pytest.mark.parametrize(
    ("rule", "given", "expected"),
    [
        ("nfkc", "Ｎｉｒｖａｎａ", "Nirvana"),  # a real full-width Last.fm artist name
        ("nfkc", "ﬁne", "fine"),
        ("control_chars", "Bj\u200börk\x07", "Bj örk "),
        ("whitespace", "  Mr Sizef   Unquote \n", "Mr Sizef Unquote"),  # real demo name
        (
            "strip_html",
            'Blues <a href="https://www.last.fm/tag/blues">Read more</a> &amp; soul',
            "Blues Read more & soul",
        ),
        ("lastfm_boilerplate", "Icelandic singer. Read more on Last.fm", "Icelandic singer."),
    ],
)
def test_text_rules(rule: str, given: str, expected: str) -> None:
    assert n.RULES[rule].fn(given, CTX) == expected


def test_description_is_truncated_at_a_word_boundary() -> None:
    text = ("word " * 1000).strip()
    out = n.RULES["description_length"].fn(text, CTX)
    assert len(out) <= r.DESCRIPTION_MAX_CHARS + 1 and out.endswith("word…")


def test_genre_aliasing_folds_spelling_onto_the_tree() -> None:
    for spelling in ("Hip-Hop", "HIP_HOP", "hip  hop", "Ｈｉｐ Ｈｏｐ"):
        assert VOCAB.canonical(spelling) == "hip hop"
    assert VOCAB.canonical("Drum & Bass") == "drum and bass"
    assert VOCAB.canonical("seen live") is None


def test_tags_and_genres_split_dedupe_by_case_and_keep_precedence() -> None:
    record = normalize_one(
        "artist",
        raw_row(
            spotify_data={"genres": ["art pop", "Hip-Hop"]},
            enrichment_data={
                "tags": [
                    {"name": "ART POP", "count": 5},
                    {"name": "seen live"},
                    {"name": "Seen Live"},
                ]
            },
            custom_data={"tags": ["Shoegaze"]},
        ),
    )
    assert list(record["genres"]) == ["shoegaze", "art pop", "hip hop"]
    assert list(record["tags"]) == ["seen live"]  # 'Seen Live' folded into the first spelling
    assert record["provenance"]["genres"]["from"] == [
        "custom_data.tags",
        "enrichment_data.tags[].name",
        "spotify_data.genres",
    ]


def test_precedence_custom_over_catalog_over_spotify_with_provenance() -> None:
    record = normalize_one(
        "artist",
        raw_row(
            name="bjork",
            spotify_data={"name": "Björk", "popularity": 71},
            custom_data={"name_override": "Björk"},
        ),
    )
    assert record["name"] == "Björk"
    assert record["provenance"]["name"]["path"] == "custom_data.name_override"
    assert record["provenance"]["name"]["rules"] == [
        "nfc@1",
        "control_chars@2",
        "whitespace@1",
        "name_length@1",
    ]
    assert record["popularity"] == 71
    # an empty editorial override does not hide the catalog's name
    record = normalize_one("artist", raw_row(name="bjork", custom_data={"name_override": "  "}))
    assert record["name"] == "bjork" and record["provenance"]["name"]["source"] == "catalog"


def test_non_latin_scripts_are_kept() -> None:
    record = normalize_one(
        "artist",
        raw_row(
            name="Сергей Сергеевич Прокофьев",
            enrichment_data={"aliases": [{"name": "プロコフィエフ"}, {"name": "Prokofief"}]},
        ),
    )
    assert record["name"] == "Сергей Сергеевич Прокофьев"
    assert list(record["aliases"]) == ["プロコフィエフ", "Prokofief"]


def test_type_specific_fields() -> None:
    album = normalize_one(
        "album",
        raw_row(
            spotify_data={
                "release_date": "1991-09-24",
                "label": "DGC",
                "album_type": "album",
                "artists": [{"name": "Nirvana"}],
            },
            enrichment_data={"label": "Geffen"},
            links={"artists": [{"id": 3, "name": "Nirvana"}]},
        ),
    )
    assert album["release_year"] == 1991
    assert album["label"] == "Geffen"  # enrichment outranks spotify_data
    assert list(album["artists"]) == ["Nirvana"]
    track = normalize_one(
        "track",
        raw_row(
            spotify_data={
                "duration_ms": 301920,
                "album": {"name": "Nevermind"},
                "external_ids": {"isrc": "USGF19942501"},
            }
        ),
    )
    assert (track["duration_ms"], track["album"], track["isrc"]) == (
        301920,
        "Nevermind",
        "USGF19942501",
    )


@pytest.mark.parametrize(
    ("resource_type", "sources", "rule"),
    [
        (
            "artist",
            {"spotify_data": {"name": ["a", "list"]}, "name": None},
            "type:spotify_data.name",
        ),
        ("artist", {"name": "x" * 600}, "name_length@1"),
        ("artist", {"name": None}, "required:name"),
    ],
)
def test_a_row_without_a_usable_name_is_rejected_with_a_reason(
    resource_type: str, sources: dict, rule: str
) -> None:
    name = sources.pop("name", "Fine")
    good = raw_row(1, "Good Row")
    bad = raw_row(2, name, **sources)
    records, rejections = n.normalize_rows(resource_type, [good, bad], CTX)
    # the good row is not held back by the bad one
    assert [row["resource_id"] for row in records] == [1]
    assert [(r.resource_id, r.stage, r.rule) for r in rejections] == [(2, "normalize", rule)]
    assert rejections[0].reason


@pytest.mark.parametrize(
    ("resource_type", "sources", "field", "rule", "value"),
    [
        ("artist", {"spotify_data": {"popularity": "very high"}}, "popularity", "int_range@1",
         "very high"),
        ("artist", {"spotify_data": {"popularity": True}}, "popularity", "int_range@1", "true"),
        ("artist", {"enrichment_data": {"tags": "rock"}}, "genres",  # and tags: same path
         "type:enrichment_data.tags[].name", "rock"),
        ("album", {"spotify_data": {"release_date": "Single"}}, "release_year", "year@1",
         "Single"),
        ("artist", {"custom_data": {"hidden": "yes"}}, "hidden", "type:custom_data.hidden", "yes"),
    ],
)  # fmt: skip
def test_a_bad_value_drops_its_field_and_the_resource_is_still_published(
    resource_type: str, sources: dict, field: str, rule: str, value: str
) -> None:
    good = raw_row(1, "Good Row")
    sources = {"custom_data": {"aliases": ["Kept Alias"]}, **sources}
    bad = raw_row(2, "Still Published", **sources)
    records, rejections = n.normalize_rows(resource_type, [good, bad], CTX)
    assert [row["resource_id"] for row in records] == [1, 2]
    published = records[1]
    assert published["name"] == "Still Published"
    assert published[field] in (None, [], False)
    if "aliases" in sources["custom_data"]:
        assert published["aliases"] == ["Kept Alias"]  # the good fields stay
    ((resource_id, stage, got_rule, raw_value),) = [
        (r.resource_id, r.stage, r.rule, r.raw_value) for r in rejections
    ]
    assert (resource_id, stage, got_rule) == (2, "field", f"{field}:{rule}")
    assert raw_value == value and rejections[0].reason.startswith(f"{field}: ")
    assert field not in orjson.loads(published["provenance"])


def test_two_bad_fields_make_one_quarantine_row_naming_both() -> None:
    row = raw_row(3, "Two Bad", spotify_data={"popularity": "high", "release_date": "soon"})
    records, rejections = n.normalize_rows("album", [row], CTX)
    assert len(records) == 1
    (rejection,) = rejections
    assert rejection.rule == "release_year:year@1"
    assert rejection.reason.startswith("release_year: ") and "; popularity: " in rejection.reason


def test_rule_version_bump_changes_every_documents_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = normalize_one("genre", raw_row(name="rock"))
    bumped = dict(n.RULES)
    bumped["whitespace"] = r.Rule("whitespace", 2, "text", n.RULES["whitespace"].fn, "v2")
    monkeypatch.setattr(n, "RULES", bumped)
    version = n.NORMALIZATION_VERSION
    new_version = r.normalization_version(bumped)
    monkeypatch.setattr(n, "NORMALIZATION_VERSION", new_version)
    after = normalize_one("genre", raw_row(name="rock"))
    assert new_version != version
    assert after["normalization_version"] == new_version != before["normalization_version"]
    assert "whitespace@2" in after["provenance"]["name"]["rules"]
    assert after["content_hash"] != before["content_hash"]
    assert n.input_hash("h", CTX) != "" and n.input_hash("h", CTX) != before["content_hash"]


def test_every_fixture_row_normalizes_or_is_rejected_with_a_reason() -> None:
    """The real demo data: nothing crashes, nothing vanishes."""
    by_type: dict[str, list[dict]] = {}
    names = []
    for record in fixture_records():
        if record["resource_type"] == "genre":
            names.append(record["name"])
        by_type.setdefault(record["resource_type"], []).append(
            raw_row(
                record["id"],
                record["name"],
                spotify_data=record.get("spotify_data"),
                enrichment_data=record.get("enrichment_data"),
                custom_data=record.get("custom_data"),
            )
        )
    ctx = r.NormalizationContext(r.GenreVocabulary.from_names(names))
    for resource_type, rows in by_type.items():
        records, rejections = n.normalize_rows(resource_type, rows, ctx)
        assert len(records) + len(rejections) == len(rows)
        assert min(len(r["name"]) for r in records) > 0
        assert all(r.reason for r in rejections)
    html = [
        r for r in by_type["artist"] if r["enrichment_data"] and "<a href" in r["enrichment_data"]
    ]
    assert html, "the fixture is expected to carry real HTML bios"
    records, _ = n.normalize_rows("artist", html, ctx)
    descriptions = [r["description"] for r in records if r["description"]]
    assert descriptions and not any("<a " in d for d in descriptions)
    assert not any("Read more on Last.fm" in d for d in descriptions)


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("AT&amp;amp;T", "AT&amp;T"),  # entities decoded once, not twice
        (
            "<h2>Two</h2><p>Three</p><table><tr><td>Four</td><td>Five</td></tr></table>",
            "Two Three Four Five",
        ),
        ("Bio<script>alert('x')</script><style>.a{}</style> ends", "Bio ends"),  # no code leaks
        ("<p>Hel<b>lo</b></p>world &amp; more", "Hello world & more"),  # inline tags glue
        ("no markup at all", "no markup at all"),
    ],
)
def test_html_reduces_to_its_text(html: str, text: str) -> None:
    assert n._apply_text_rules(html, _fns("strip_html", "whitespace"), CTX) == text


@pytest.mark.parametrize(
    ("marked", "text"),
    [
        (
            "Member of [a=The Beatles], signed to [l=Apple Records].",
            "Member of The Beatles, signed to Apple Records.",
        ),
        (
            "See [url=https://www.discogs.com/artist/1]his page[/url] [a12345] [r=99]",
            "See his page",
        ),
        ("[b]Bold[/b] and [i]italic[/i] [img]https://i.discogs.com/x.jpg[/img]", "Bold and italic"),
        ("A [bracketed] word stays", "A [bracketed] word stays"),
    ],
)
def test_discogs_and_bbcode_markup_reduce_to_text(marked: str, text: str) -> None:
    assert n._apply_text_rules(marked, _fns("strip_markup", "whitespace"), CTX) == text


def test_a_description_goes_through_html_then_markup() -> None:
    record = normalize_one(
        "artist",
        raw_row(enrichment_data={"bio": {"summary": "<p>Plays in [a=Can]</p><p>Since 1968</p>"}}),
    )
    assert record["description"] == "Plays in Can Since 1968"
    assert {"strip_html@2", "strip_markup@1"} <= set(record["provenance"]["description"]["rules"])
