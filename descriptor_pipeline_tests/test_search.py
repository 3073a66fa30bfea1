"""Search over the published index (SQLite FTS5), on a backfilled demo catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.cli import main as cli_main
from descriptor_pipeline.demo.seed import seed_catalog
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.search import fts_query
from descriptor_pipeline_tests.conftest import Deployment


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("search")
    (tmp / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp / "dagster_home")) as instance:
        dep = Deployment(
            f"sqlite:///{tmp / 'catalog.sqlite'}",
            f"sqlite:///{tmp / 'index.sqlite'}",
            instance,
            chunk_size=1000,
        )
        seed_catalog(dep.catalog.engine, dep.catalog.config)
        dep.backfill()
        yield dep


def keys(store: IndexStore, query: str, **kwargs: object) -> list[str]:
    return [h.document_key for h in store.search(query, **kwargs)]


def name_of(dep: Deployment, key: str) -> str:
    resource_type, resource_id = key.split(":")
    doc = dep.store.document(resource_type, int(resource_id))
    assert doc is not None
    return doc["name"]


def test_genre_search_ranks_the_exact_name_first(indexed: Deployment) -> None:
    # "shoegazer" scores higher by bm25 than "shoegaze", yet the exact name comes first
    hits = indexed.store.search("shoegaze")
    assert [name_of(indexed, h.document_key) for h in hits][:2] == ["shoegaze", "shoegazer"]
    assert (hits[0].match, hits[1].match) == ("exact", "prefix")
    assert hits[0].rank > hits[1].rank


TIERS = {"exact": 3, "prefix": 2, "words": 1, "similar": 0}


@pytest.mark.parametrize("query", ["jazz", "soul"])
def test_hits_follow_the_ranking_specification(indexed: Deployment, query: str) -> None:
    """docs/search.md, Score: the name tier first (exact > prefix > words), then a named
    resource above a genre of the same tier (+0.5), then the weighted text share, in which the
    word in the name (weight A 1.0) outranks the word only in genres or tags (C 0.2). Each
    hit's class is read from what it matched, not from its score; both queries have hits of
    all seven classes in the demo catalog, so a tier, the named bonus or the column weights
    going wrong reorders them."""
    hits = indexed.store.search(query, limit=200)
    classes = [
        (TIERS[h.match], h.resource_type != "genre", "name" in h.matched_fields) for h in hits
    ]
    assert name_of(indexed, hits[0].document_key) == query and hits[0].match == "exact"
    assert len(set(classes)) == 7
    assert classes == sorted(classes, reverse=True)


def test_full_width_and_non_latin_queries_find_their_documents(indexed: Deployment) -> None:
    names = [name_of(indexed, k) for k in keys(indexed.store, "Ｎｉｒｖａｎａ", limit=50)]
    assert "Nirvana" in names
    found = keys(indexed.store, "プロコフィエフ", resource_type="artist")
    assert found and "Прокофьев" in name_of(indexed, found[0])


def test_type_filter_prefix_match_and_hidden(indexed: Deployment) -> None:
    assert all(k.startswith("album:") for k in keys(indexed.store, "nev", resource_type="album"))
    assert keys(indexed.store, "nevermi", resource_type="album")  # prefix of the last word
    with indexed.store.engine.connect() as conn:
        hidden = conn.execute(
            sa.text("SELECT document_key, name FROM descriptor_index WHERE hidden LIMIT 1")
        ).one()
    assert hidden.document_key not in keys(indexed.store, hidden.name, limit=100)
    assert hidden.document_key in keys(indexed.store, hidden.name, limit=100, include_hidden=True)


@pytest.mark.parametrize(
    "query", ['"', "AND OR NOT", "*", "name: x", "'); DROP TABLE x;--", "NEAR(a b)", "", "   "]
)
def test_operator_characters_never_break_the_query(indexed: Deployment, query: str) -> None:
    indexed.store.search(query)  # must not raise
    built = fts_query(query)
    assert built is None or all(part.startswith('"') for part in built.split())


def test_cli_search(
    indexed: Deployment,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DESCRIPTOR_INDEX_URL", indexed.index_url)
    monkeypatch.setenv("DESCRIPTOR_PIPELINE_DATA", str(tmp_path))
    assert cli_main(["search", "shoegaze", "--limit", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) <= 3 and "genre:" in out[0] and "shoegaze" in out[0]


def test_cli_search_json_is_the_consumer_contract(
    indexed: Deployment,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import json

    monkeypatch.setenv("DESCRIPTOR_INDEX_URL", indexed.index_url)
    monkeypatch.setenv("DESCRIPTOR_PIPELINE_DATA", str(tmp_path))
    assert cli_main(["search", "Nevremind", "--type", "album", "--limit", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3
    assert {"key", "type", "id", "name", "score", "matched_fields", "match"} <= set(hits[0])
    assert hits[0]["name"] == "Nevermind" and hits[0]["type"] == "album"
    assert hits[0]["key"] == f"album:{hits[0]['id']}" and hits[0]["match"] == "similar"
    assert cli_main(["search", "x" * 100_000, "--json"]) == 2
    assert "at most 512" in capsys.readouterr().err


def test_cli_search_into_a_closed_pipe_exits_0(indexed: Deployment, tmp_path: Path) -> None:
    """`search … | grep -q x` closes the pipe early; with pipefail the CLI must still exit 0."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "DESCRIPTOR_INDEX_URL": indexed.index_url,
        "DESCRIPTOR_PIPELINE_DATA": str(tmp_path),
    }
    cli = Path(sys.executable).parent / "descriptor-pipeline"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"'{cli}' search 'rock' --limit 200 | head -c 1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "BrokenPipeError" not in done.stderr


def test_one_edit_variants_cover_swaps_deletions_replacements_and_insertions() -> None:
    from descriptor_pipeline.search_sqlite import corrected_names, edits

    variants = set(edits("rtia"))
    assert {"rita", "ria", "rtiaa", "rtib"} <= variants and "rtia" not in variants
    assert len(variants) == len(edits("rtia"))  # no duplicates
    # the corrected queries are every combination of the kept corrections, capped
    assert corrected_names([["a"], ["b", "c"], []]) == ["a b", "a c"]
    assert len(corrected_names([["x", "y"]] * 8)) == 16
