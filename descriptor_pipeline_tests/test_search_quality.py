"""The labelled query set is what its rules make of the demo data, and search meets its targets."""

from __future__ import annotations

from bench.search_queries import KINDS, QUERY_FILE, _swap, generate, load, render
from descriptor_pipeline.demo.seed import fixture_records


def test_the_committed_query_set_is_the_generators_output() -> None:
    generated = generate(fixture_records())
    assert QUERY_FILE.read_text(encoding="utf-8") == render(generated), (
        "bench/search_queries.jsonl is stale: run .venv/bin/python -m bench.search_queries"
    )
    queries = load()
    assert len(queries) >= 150
    assert {q["kind"] for q in queries} == set(KINDS)
    assert all(q["expected"] for q in queries)


def test_a_misspelling_swaps_two_adjacent_letters_of_the_longest_word() -> None:
    assert _swap("Nevermind") == "Nevremind"
    assert _swap("Reef") is None  # under 7 characters: no rule applies
    swapped = _swap("The Very Best of the Eagles")
    assert swapped is not None and sorted(swapped) == sorted("The Very Best of the Eagles")


def test_a_name_is_displayed_as_the_catalog_has_it_and_searched_folded() -> None:
    import orjson

    from descriptor_pipeline.documents import build_document
    from descriptor_pipeline_tests.test_normalization import normalize_one, raw_row

    record = normalize_one("track", raw_row(name="Ｓｏｎｇ  Title™ \u200b"))
    assert record["name"] == "Ｓｏｎｇ Title™"  # only control characters and spaces cleaned
    record["provenance"] = orjson.dumps(record["provenance"]).decode()
    document = build_document("track", record)
    assert document["name"] == "Ｓｏｎｇ Title™"
    assert document["display_text"].startswith("Ｓｏｎｇ Title™ (track)")
    assert document["search_name"] == "song title tm"  # NFKC folds ™, as a word of its own
