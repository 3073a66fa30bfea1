"""The quality package's parts that need no Dagster run and no database, tested as plain
functions: the drift comparison and its thresholds, thresholds taken from the `quality` resource,
report links and the pruning of old Data Docs pages, and the index suite's status of every id.
The drift profile and the frames it is computed from, and how a suite is assembled, are here
too. The tests with real GX runs are in test_quality.py."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson

from descriptor_pipeline.defs.resources import QualitySettings
from descriptor_pipeline.quality.drift import compare_profiles, profile_of
from descriptor_pipeline.quality.frames import normalized_facts
from descriptor_pipeline.quality.reports import data_docs_url, prune_data_docs
from descriptor_pipeline.quality.results import DEFAULTS, Thresholds
from descriptor_pipeline.quality.suites import suite_for
from descriptor_pipeline.rules import NORMALIZATION_VERSION


def test_compare_profiles_thresholds() -> None:
    before = {"rows": 100.0, "null_rate.name": 0.0, "distinct.tags": 40.0, "length.name.p50": 12}
    same = compare_profiles(before, {**before, "null_rate.name": 0.05})
    assert same == []
    moved = compare_profiles(
        before, {**before, "null_rate.name": 0.2, "distinct.tags": 10.0, "length.name.p50": 14}
    )
    assert [d.metric for d in moved] == ["distinct.tags", "null_rate.name"]
    strict = Thresholds(drift_max_rate_change=0.01)
    assert compare_profiles(before, {**before, "null_rate.name": 0.05}, strict)
    small = {**before, "rows": 5.0}
    assert compare_profiles(small, {**small, "null_rate.name": 1.0}) == []
    assert compare_profiles(None, before) == []


def test_thresholds_come_from_the_quality_resource() -> None:
    assert QualitySettings().thresholds() == Thresholds()  # one copy of the defaults
    assert QualitySettings(min_vocab_share=0.5).thresholds().min_vocab_share == 0.5
    per_type = QualitySettings(
        min_vocab_share=0.5,
        per_resource_type={"track": {"min_vocab_share": 0.9, "present.duration_ms": 0.8}},
    )
    assert per_type.thresholds("track").min_vocab_share == 0.9
    assert per_type.thresholds("track").min_present == (("duration_ms", 0.8),)
    assert per_type.thresholds("artist").min_vocab_share == 0.5  # the common value


def test_report_links_are_http_under_a_base_url_else_file_urls(tmp_path: Path) -> None:
    """A browser refuses file:// links from the UI's http page: with a base URL the link is the
    page's path under it (what scripts/ui.sh serves), without one the file URL as before."""
    root = tmp_path / "data_docs"
    page = root / "run-1" / "000000000-000000999_artist" / "raw.artist 1.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html></html>")
    assert data_docs_url(page, root) == page.resolve().as_uri()
    served = QualitySettings(data_docs_dir=str(root), data_docs_base_url="http://127.0.0.1:3001/")
    assert served.docs_url(page) == (
        "http://127.0.0.1:3001/run-1/000000000-000000999_artist/raw.artist%201.html"
    )


def test_rendering_prunes_run_folders_older_than_the_setting(tmp_path: Path) -> None:
    root = tmp_path / "data_docs"
    old, recent = root / "old-run", root / "recent-run"
    for run in (old, recent):
        (run / "partition").mkdir(parents=True)
        (run / "partition" / "raw.html").write_text("<html></html>")
    month_ago = time.time() - 30 * 86_400
    os.utime(old, (month_ago, month_ago))
    assert prune_data_docs(root, keep_days=0) == []  # 0 keeps every page
    assert prune_data_docs(root, keep_days=14) == [old]
    assert not old.exists() and (recent / "partition" / "raw.html").is_file()


def test_reconciliation_names_every_id_s_status_once() -> None:
    """Published, withdrawn (blocked), quarantined, and the two failures the index suite
    rejects: a published id the catalog lost (orphan) and a catalog id that is nowhere."""
    import pandas as pd

    from descriptor_pipeline.quality.frames import INDEX_FRAME_COLUMNS, index_frame

    keys = pd.DataFrame(
        [
            {"resource_id": 5, "document_key": "track:5", "normalization_version": "v"},
            {"resource_id": 1, "document_key": "track:1", "normalization_version": "v"},
            {"resource_id": 7, "document_key": "track:7", "normalization_version": "v"},
            {"resource_id": 3, "document_key": "track:3", "normalization_version": "v"},
        ]
    )
    frame = index_frame(
        keys,
        catalog_ids=[1, 2, 3, 4, 5, 6, 6],  # a mapped catalog's id need not be unique
        blocked_ids=[2, 3],
        quarantined_ids=pd.Series([4, 4]),  # one quarantine row per rule
        search_names={1: "one", 5: ""},
    )
    assert list(frame.columns) == list(INDEX_FRAME_COLUMNS)
    assert frame["resource_id"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert frame["status"].tolist() == [
        "published",
        "withdrawn",
        "published_but_blocked",
        "quarantined",
        "published",
        "missing",
        "orphan",
    ]
    assert _nulls(frame["document_key"]) == [
        "track:1",
        None,
        "track:3",
        None,
        "track:5",
        None,
        "track:7",
    ]
    assert _nulls(frame["search_name"]) == ["one", None, None, None, "", None, None]
    assert _nulls(frame["normalization_version"]) == ["v", None, "v", None, "v", None, "v"]
    empty = index_frame(keys.iloc[0:0], [], [], pd.Series([], dtype=object))
    assert list(empty.columns) == list(INDEX_FRAME_COLUMNS) and len(empty) == 0


def _nulls(column: object) -> list[object]:
    """A column's values with every null (None, NaN, pandas' NA) as None."""
    import pandas as pd

    return [None if pd.isna(v) else v for v in column]  # type: ignore[attr-defined]


def _stored_artist(resource_id: int, fields: dict[str, Any], provenance: dict[str, Any]) -> dict:
    """A row as the normalize stage stores it: fields and provenance as JSON text."""
    return {
        "resource_id": resource_id,
        "resource_type": "artist",
        "normalization_version": NORMALIZATION_VERSION,
        "fields": orjson.dumps(fields).decode(),
        "provenance": orjson.dumps(provenance).decode(),
    }


def test_the_drift_profile_comes_from_the_frames_the_suites_validate() -> None:
    rows = [
        _stored_artist(
            1,
            {"name": "Björk", "genres": ["art pop", "idm", "electronic"], "description": "Singer"},
            {
                "name": {"source": "catalog", "path": "catalog.name"},
                "genres": {
                    "from": ["spotify_data.genres", "spotify_data.genres", "links.genres[].name"]
                },
                "description": {"source": "custom_data"},
            },
        ),
        _stored_artist(
            2,
            {"name": "Sigur Rós", "genres": ["post-rock"], "description": "", "aliases": []},
            {"name": {"source": "spotify_data"}, "genres": {"from": ["spotify_data.genres"]}},
        ),
    ]
    frame, values = normalized_facts("artist", rows, None)
    assert frame["description"].tolist() == ["Singer", None]  # empty text: no value
    assert frame["aliases"].tolist() == [None, None]
    genres = values[values["field"] == "genres"]
    assert genres[["resource_id", "value", "source"]].values.tolist() == [
        [1, "art pop", "spotify_data"],
        [1, "idm", "spotify_data"],
        [1, "electronic", "links"],
        [2, "post-rock", "spotify_data"],
    ]
    profile = profile_of("artist", frame, values)
    assert profile["rows"] == 2.0
    assert profile["null_rate.description"] == 0.5
    assert profile["null_rate.name"] == 0.0
    assert profile["present.genres.spotify_data"] == 1.0  # row 1's two values count it once
    assert profile["present.genres.links"] == 0.5
    assert profile["present.name.catalog"] == 0.5
    assert profile["present.description.custom_data"] == 0.5
    assert profile["distinct.genres"] == 4.0
    assert profile["length.name.p50"] == 7.0  # "Björk" 5, "Sigur Rós" 9


def test_value_lines_name_a_source_only_where_the_provenance_covers_the_value() -> None:
    """A provenance list shorter than the values leaves the rest without a source; an item
    that is not a path is read as it is; no value at all gives the columns, untyped."""
    rows = [
        _stored_artist(
            3,
            {"name": "Can", "genres": ["krautrock", "art rock", "jazz rock"], "tags": [7]},
            {"genres": {"from": ["links.genres[0]", 42]}, "tags": "not an entry"},
        )
    ]
    _, values = normalized_facts("artist", rows, None)
    lines = values[values["field"].isin(["genres", "tags"])]
    assert lines[["value", "source"]].astype(object).where(lines.notna(), None).values.tolist() == [
        ["krautrock", "links"],
        ["art rock", "42"],
        ["jazz rock", None],
        ["7", None],
    ]
    _, empty = normalized_facts("artist", [], None)
    assert list(empty.columns) == ["resource_id", "field", "value", "source", "in_tree"]
    assert empty.empty and set(empty.dtypes.astype(str)) == {"object"}


def test_a_suite_holds_each_expectation_once_when_thresholds_make_two_alike() -> None:
    """`present.genres` equal to `min_genre_coverage` gives the same warning twice; GX's
    `add_expectation` used to drop the second, building the suite whole must too."""
    alike = DEFAULTS.with_overrides({"present.genres": DEFAULTS.min_genre_coverage})
    suite = suite_for("normalized", "artist", alike)
    configs = [(e.expectation_type, repr(e.configuration.kwargs)) for e in suite.expectations]
    assert len(configs) == len(set(configs))
    assert (
        sum(c[0] == "expect_column_values_to_not_be_null" and "'genres'" in c[1] for c in configs)
        == 1
    )
