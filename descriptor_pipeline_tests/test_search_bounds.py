"""No search runs unbounded, whatever the text: caps on length and words, control characters
removed, a time budget enforced by the database; on both backends."""

from __future__ import annotations

import time

import pytest

from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.search import (
    MAX_QUERY_CHARS,
    MAX_QUERY_WORDS,
    SearchRefused,
)
from descriptor_pipeline.search_sqlite import search_sqlite
from descriptor_pipeline_tests.conftest import Deployment

ARTISTS_0 = DescriptorPartition("artist", IdRange(0, 999))
HOSTILE = [
    "!!! ??? ... ---",  # only punctuation
    '"nirvana" OR radio* NEAR(a b) -x ^y',  # FTS5 syntax
    "nirvana & !radiohead | ra:* <-> (x)",  # tsquery syntax
    "'; DROP TABLE descriptor_index; --",  # SQL
    "nir\x00vana",  # NUL: PostgreSQL refuses it in text
    "\u202enirvana\u2066",  # bidi overrides and isolates
    "a" * MAX_QUERY_CHARS,  # one very long word
    " ".join(["the"] * MAX_QUERY_WORDS),  # as many words as allowed
]


@pytest.fixture
def indexed(backend_deployment: Deployment) -> Deployment:
    backend_deployment.register()
    assert backend_deployment.materialize(ARTISTS_0).success
    return backend_deployment


def test_hostile_queries_answer_within_the_budget(indexed: Deployment) -> None:
    for text in HOSTILE:
        started = time.monotonic()
        hits = indexed.store.search(text, budget=2.0)
        assert time.monotonic() - started < 2.5, text
        assert all(h.document_key.startswith("artist:") for h in hits), text
    # the NUL and bidi characters are not part of what is searched
    assert [h.name for h in indexed.store.search("\u202enirvana\u2066")][:1] == ["Nirvana"]


def test_queries_past_the_caps_are_refused_with_the_reason(indexed: Deployment) -> None:
    with pytest.raises(SearchRefused, match="characters"):
        indexed.store.search("x " * 50_000)  # 100 KB
    with pytest.raises(SearchRefused, match="words"):
        indexed.store.search(" ".join(["nirvana"] * (MAX_QUERY_WORDS + 1)))


def test_a_sqlite_search_over_its_budget_is_stopped_by_the_database(
    deployment: Deployment,
) -> None:
    """SQLite's progress handler; on PostgreSQL the same budget is `statement_timeout`, which a
    query over the demo index never reaches (it ends within a millisecond)."""
    deployment.register()
    assert deployment.materialize(ARTISTS_0).success
    with pytest.raises(SearchRefused, match="budget"):
        search_sqlite(deployment.store.engine, "the", 1000, None, True, budget=0.0)
