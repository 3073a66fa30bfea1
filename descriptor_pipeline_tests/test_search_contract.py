"""The lookup contract on both backends: one ranking, the SQL function for services, hostile
text answered with results or a clear refusal."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.demo.seed import seed_catalog
from descriptor_pipeline.documents import WEIGHT_COLUMNS
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.migrations.versions import __path__ as versions_path
from descriptor_pipeline.schema import SEARCH_WEIGHTS
from descriptor_pipeline.search_query import (
    EXACT,
    NAMED_BONUS,
    PREFIX,
    SIMILAR_SHARE,
    TEXT_SHARE,
    SearchRefused,
)
from descriptor_pipeline_tests.conftest import Deployment

PARTITIONS = (
    DescriptorPartition("artist", IdRange(0, 999)),
    DescriptorPartition("genre", IdRange(0, 999)),
)
HOSTILE = [
    '"nirvana" OR radio* NEAR(a b) -x ^y',  # FTS5 syntax
    "nirvana & !radiohead | ra:* <-> (x)",  # tsquery syntax
    "!!! ??? ... ---",  # only punctuation
    "nir\x00vana",  # NUL
    "'; DROP TABLE descriptor_index; --",
]


def _published(dep: Deployment) -> Deployment:
    dep.register()
    for partition in PARTITIONS:
        assert dep.materialize(partition).success
    return dep


@pytest.fixture
def indexed(backend_deployment: Deployment) -> Deployment:
    return _published(backend_deployment)


@pytest.fixture
def indexed_postgres(pg_url: str, instance: dg.DagsterInstance) -> Deployment:
    """PostgreSQL only: SQLite has no stored functions, so there is nothing to run there."""
    dep = Deployment(pg_url, pg_url, instance)
    dep.store  # noqa: B018 - migrate first: it creates the roles the seed grants to
    seed_catalog(dep.catalog.engine, dep.catalog.config)
    return _published(dep)


def test_one_ranking_exact_misspelled_reordered_and_named_before_genres(
    indexed: Deployment,
) -> None:
    store = indexed.store
    hits = store.search("nirvana")
    exact = hits[0]
    assert (exact.name, exact.match, exact.matched_fields[0]) == ("Nirvana", "exact", "name")
    assert "similar" not in {h.match for h in hits}  # a name was found: no lookalikes padded in
    typo = store.search("Nirvnaa")[0]  # no word matches: similar names fill in
    assert (typo.name, typo.match) == ("Nirvana", "similar")
    assert typo.rank < 1.0  # below every all-words match
    assert store.search("Thief Big")[0].name == "Big Thief"  # word order is free
    # "art" is the first word of two short genre rows and of a named artist: the artist first
    names = [h.name for h in store.search("art", limit=5)]
    assert names.index("Art Blakey") < min(names.index("art punk"), names.index("art rock"))


def test_typos_are_corrected_against_the_vocabulary_of_names(indexed: Deployment) -> None:
    """A swap of two letters of a short word leaves it no trigram of the right word ("rtia" and
    "rita" share none): the one-edit lookup in the vocabulary still finds it; a query whose
    known words no document holds together falls back to all words but the last."""
    store = indexed.store
    with store.engine.connect() as conn:
        known = conn.execute(
            sa.text("SELECT count(*) FROM descriptor_index_words WHERE word IN ('rita', 'ora')")
        ).scalar()
    assert known == 2  # the vocabulary learned the published names' words
    typo = store.search("Rtia Ora")[0]
    assert (typo.name, typo.match) == ("Rita Ora", "similar")
    assert "Big Thief" in [h.name for h in store.search("Big Thief Nirvana")]
    assert store.search("Qqxzv Wwkjh") == []  # nothing similar: no lookalike padding


def test_a_shadow_index_feeds_the_vocabulary_too(indexed_postgres: Deployment) -> None:
    """LIKE copies no triggers: create_shadow adds the vocabulary's, so a rebuilt index that is
    swapped in has its words corrected against."""
    from descriptor_pipeline import index_store_postgres as pg

    engine = indexed_postgres.store.engine
    pg.create_shadow(engine)
    with engine.begin() as conn:
        columns = ", ".join(
            conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = "
                    "'descriptor_index' AND is_generated = 'NEVER' AND column_name <> 'doc_id'"
                )
            ).scalars()
        )
        conn.execute(
            sa.text(
                f"INSERT INTO descriptor_index_shadow ({columns}) "
                f"SELECT {columns} FROM descriptor_index LIMIT 1"
            )
        )
        conn.execute(sa.text("UPDATE descriptor_index_shadow SET search_name = 'shadowprobe x'"))
        learned = conn.execute(
            sa.text("SELECT count(*) FROM descriptor_index_words WHERE word = 'shadowprobe'")
        ).scalar()
    assert learned == 1


def test_hostile_text_gives_results_or_a_clear_refusal(indexed: Deployment) -> None:
    for text in HOSTILE:
        hits = indexed.store.search(text)
        assert all(h.resource_type in ("artist", "genre") for h in hits), text
    assert indexed.store.search("nir\x00vana") == indexed.store.search("nir vana")
    with pytest.raises(SearchRefused, match="at most 512"):
        indexed.store.search("x" * 100_000)
    with pytest.raises(SearchRefused, match="limit"):
        indexed.store.search("nirvana", limit=0)


def test_the_sql_function_is_the_ranking_services_get_as_reader(
    indexed_postgres: Deployment,
) -> None:
    indexed = indexed_postgres
    call = sa.text("SELECT key, score, matched_fields, match FROM descriptor_search(:q, :t, :n)")
    with indexed.store.engine.connect() as conn, conn.begin():
        conn.execute(sa.text("SET LOCAL ROLE descriptor_reader"))
        rows = conn.execute(call, {"q": "Nirvnaa", "t": "artist", "n": 5}).all()
        assert rows and rows[0].match == "similar"
        for text in HOSTILE[:3]:  # operator syntax is only words to it
            conn.execute(call, {"q": text, "t": None, "n": 5}).all()
        with pytest.raises(sa.exc.DataError, match="at most 512 are searched"), conn.begin_nested():
            conn.execute(call, {"q": "x " * 50_000, "t": None, "n": 5})
    python = indexed.store.search("Nirvnaa", resource_type="artist", limit=5)
    assert [r.key for r in rows] == [h.document_key for h in python]


def test_the_sql_function_holds_the_specifications_numbers() -> None:
    (path,) = versions_path
    # the function as the newest migration that defines it has it
    source = (Path(path) / "0010_search_vocabulary.py").read_text(encoding="utf-8")
    weights = ", ".join(str(SEARCH_WEIGHTS[w]) for w in reversed(WEIGHT_COLUMNS))  # D C B A
    assert f"'{{{weights}}}'" in source
    for number in (EXACT, PREFIX):
        assert f"THEN {int(number)}" in source
    for number in (NAMED_BONUS, TEXT_SHARE, SIMILAR_SHARE):
        assert f"{number} " in source or f"{number} *" in source
