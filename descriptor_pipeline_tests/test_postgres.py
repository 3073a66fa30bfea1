"""What only PostgreSQL does: zero-rewrite reruns, GIN search, roles, swap, dagster-postgres."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline import index_store_postgres as pg
from descriptor_pipeline.demo.seed import seed_catalog
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.raw_stage import extract_raw
from descriptor_pipeline.stages import (
    normalization_context,
    normalize_partition,
    publish_partition,
)
from descriptor_pipeline.store_engine import create_engine, run_migrations
from descriptor_pipeline_tests.conftest import Deployment, metadata_of, write_instance_file

ROOT = Path(__file__).resolve().parents[1]
ARTISTS = DescriptorPartition("artist", IdRange(0, 999))


@pytest.fixture
def deployment(pg_deployment: Deployment) -> Deployment:
    return pg_deployment


def xmins(engine: sa.Engine, table: str = "descriptor_index") -> dict[tuple[str, int], str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT resource_type, resource_id, xmin::text FROM {table}"))
        return {(r[0], r[1]): r[2] for r in rows}


def test_rerun_rewrites_no_tuple(deployment: Deployment) -> None:
    deployment.register()
    deployment.materialize(ARTISTS)
    engine = deployment.store.engine
    before = {
        t: xmins(engine, t)
        for t in ("raw_descriptors", "normalized_descriptors", "descriptor_index")
    }
    result = deployment.materialize(ARTISTS)
    assert metadata_of(result, "descriptor_index")["rows_written"] == 0
    for table, versions in before.items():
        assert xmins(engine, table) == versions, table  # same tuple versions: nothing rewritten
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE music_artist SET name = 'Ｂｊöｒｋ' WHERE id = 3"))
    deployment.materialize(ARTISTS)
    after = xmins(engine)
    changed = {k for k in after if after[k] != before["descriptor_index"].get(k)}
    assert changed == {("artist", 3)}


def test_search_uses_the_gin_index_and_folds_accents(deployment: Deployment) -> None:
    deployment.backfill()
    store = deployment.store
    hits = store.search("bjork", resource_type="artist")
    assert hits and hits[0].name == "Björk"  # unaccent in the text search configuration
    assert store.search("shoegaze")[0].name == "shoegaze"  # exact name first
    fuzzy = store.search("shoegazr")  # no lexeme matches: trigram similarity on names
    assert fuzzy and fuzzy[0].name.startswith("shoegaze")
    with store.engine.connect() as conn:
        conn.execute(sa.text("SET enable_seqscan = off"))  # tiny table: ask for the index path
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                sa.text(
                    "EXPLAIN ANALYZE SELECT document_key FROM descriptor_index "
                    "WHERE search_vector @@ to_tsquery('descriptor_search', 'shoegaze:*')"
                )
            )
        )
    assert "descriptor_index_search" in plan, plan


def _names(engine: sa.Engine, table: str) -> dict[str, str]:
    """Index, constraint and trigger names of a table, each with what it is less the names
    (UNIQUE, method, columns and options; the constraint's definition; the trigger's function)."""
    query = (
        "SELECT 'index ' || i.relname, "
        "regexp_replace(pg_get_indexdef(i.oid), ' INDEX \\S+ ON \\S+ ', ' INDEX ON ') "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = to_regclass(:t) "
        "UNION ALL SELECT 'constraint ' || conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(:t) AND contype IN ('p', 'u') "
        "UNION ALL SELECT 'trigger ' || tgname, tgfoid::regproc::text FROM pg_trigger "
        "WHERE tgrelid = to_regclass(:t) AND NOT tgisinternal"
    )
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(query), {"t": table}).all())


def test_a_swap_by_an_earlier_version_leaves_names_the_next_cycles_bring_back(
    deployment: Deployment,
) -> None:
    """Before, the shadow was `LIKE … INCLUDING ALL` (PostgreSQL named its indexes) and the
    swap renamed the tables only: the live table carried `descriptor_index_shadow_*` names
    and the previous one the migrations'. The next shadow must still be made, indexed without
    a second copy of any index, swapped and rolled back, every table with one set of names."""
    deployment.register()
    deployment.materialize(ARTISTS)
    engine = deployment.store.engine
    migrated = _names(engine, "descriptor_index")
    with engine.begin() as conn:  # what the earlier version's shadow, swap did
        conn.exec_driver_sql(
            "CREATE TABLE descriptor_index_shadow (LIKE descriptor_index INCLUDING ALL)"
        )
        owner = conn.execute(
            sa.text("SELECT tableowner FROM pg_tables WHERE tablename = 'descriptor_index'")
        ).scalar()
        conn.exec_driver_sql(f'ALTER TABLE descriptor_index_shadow OWNER TO "{owner}"')
        pg._give_sequence_to(conn, "descriptor_index_shadow")
        conn.exec_driver_sql("ALTER TABLE descriptor_index RENAME TO descriptor_index_previous")
        conn.exec_driver_sql("ALTER TABLE descriptor_index_shadow RENAME TO descriptor_index")
    legacy = [n.split(" ")[1] for n in _names(engine, "descriptor_index")]
    assert any(n.startswith("descriptor_index_shadow") for n in legacy)

    def shapes(table: str) -> list[str]:
        return sorted(d for n, d in _names(engine, table).items() if not n.startswith("trigger"))

    def prefixes_ok(table: str) -> bool:
        bare = [n.split(" ")[-1] for n in _names(engine, table)]
        others = {"descriptor_index_shadow", "descriptor_index_previous", "descriptor_index_swap"}
        others.discard(table)
        return all(n.startswith(table) and not n.startswith(tuple(others)) for n in bare)

    pg.create_shadow(engine)  # over the names the earlier swap left on the live table
    keys = {n.split(" ")[1] for n in migrated if n.startswith("constraint")}
    secondary = [n for n in migrated if n.startswith("index") and n.split(" ")[1] not in keys]
    assert len(secondary) == 4 and len(pg.build_shadow_indexes(engine)) == len(secondary)
    assert shapes(pg.SHADOW_TABLE) == shapes("descriptor_index") == sorted(
        d for n, d in migrated.items() if not n.startswith("trigger")
    )
    pg.swap_in_shadow(engine)
    assert prefixes_ok("descriptor_index") and prefixes_ok(pg.PREVIOUS_TABLE)
    after_one = _names(engine, "descriptor_index")
    pg.rollback_swap(engine)
    assert prefixes_ok("descriptor_index") and prefixes_ok(pg.PREVIOUS_TABLE)
    pg.create_shadow(engine)
    pg.swap_in_shadow(engine)
    assert _names(engine, "descriptor_index") == after_one  # stable from here on
    assert prefixes_ok(pg.PREVIOUS_TABLE)
    # a shadow made by the earlier version already has every index: none is built twice
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS descriptor_index_shadow")
        conn.exec_driver_sql(
            "CREATE TABLE descriptor_index_shadow (LIKE descriptor_index INCLUDING ALL)"
        )
    assert pg.build_shadow_indexes(engine) == []


def test_shadow_build_swap_and_rollback(deployment: Deployment) -> None:
    deployment.register()
    deployment.materialize(ARTISTS)
    store = deployment.store

    def count() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM descriptor_index")).scalar())

    def names(table: str) -> dict[str, str]:
        return _names(store.engine, table)

    def renamed(shape: dict[str, str], table: str) -> dict[str, str]:
        """The same names for another table (each key is its kind, a space, the name)."""
        kinds = (n.split(" ", 1) for n in shape)
        return {
            f"{k} {table}{n.removeprefix('descriptor_index')}": d
            for (k, n), d in zip(kinds, shape.values(), strict=True)
        }

    live = names("descriptor_index")  # the migrations' names
    assert {
        "index descriptor_index_search",
        "index descriptor_index_name_trgm",
        "constraint descriptor_index_key",
    } <= set(live)
    published = count()
    pg.create_shadow(store.engine)
    # the keys' indexes only: the others are built once, whole, before the swap
    assert names(pg.SHADOW_TABLE) == {
        n: d
        for n, d in renamed(live, pg.SHADOW_TABLE).items()
        if n.endswith(("_pkey", "_key", "_words_ins", "_words_upd"))
    }
    # a rebuild into the shadow: here only genres, so the swap is visible in the counts
    genres = DescriptorPartition("genre", IdRange(1000, 1999))  # holds "shoegaze"
    extract_raw(deployment.catalog, store, genres, 500)
    normalize_partition(store, genres, normalization_context(deployment.catalog), 500)
    publish_partition(store, genres, 500, table_name=pg.SHADOW_TABLE)
    assert count() == published  # readers still see the old index while the shadow builds
    with store.engine.connect() as reader:  # a reader inside a long transaction: fail fast
        reader.execute(sa.text("SELECT count(*) FROM descriptor_index"))
        with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
            pg.swap_in_shadow(store.engine)
    assert store.stage_token(ARTISTS, "publish") is not None
    pg.swap_in_shadow(store.engine)
    assert count() != published and store.search("shoegaze")[0].name == "shoegaze"
    # the same names as the migrations gave, whichever table is live; the old one's moved
    assert names("descriptor_index") == live
    assert names(pg.PREVIOUS_TABLE) == renamed(live, pg.PREVIOUS_TABLE)
    assert names(pg.SHADOW_TABLE) == {}
    # another table is live under the name: no partition may count as published by hash
    assert store.stage_token(ARTISTS, "publish") is None
    deployment.materialize(ARTISTS)
    assert store.stage_token(ARTISTS, "publish") is not None
    pg.rollback_swap(store.engine)
    assert store.stage_token(ARTISTS, "publish") is None
    assert count() == published and store.search("shoegaze") == []
    assert names("descriptor_index") == live
    assert names(pg.PREVIOUS_TABLE) == renamed(live, pg.PREVIOUS_TABLE)
    with store.engine.begin() as conn:  # the reader role can read whichever table is live
        conn.execute(sa.text("SET LOCAL ROLE descriptor_reader"))
        assert conn.execute(sa.text("SELECT count(*) FROM descriptor_index")).scalar() == count()
    # and again: a second shadow cycle must be able to drop the first one's leftovers
    for _ in range(2):
        pg.create_shadow(store.engine)
        publish_partition(store, genres, 500, table_name=pg.SHADOW_TABLE)
        pg.swap_in_shadow(store.engine)
    assert count() != published and store.search("shoegaze")[0].name == "shoegaze"
    assert names("descriptor_index") == live
    assert names(pg.PREVIOUS_TABLE) == renamed(live, pg.PREVIOUS_TABLE)


def test_roles_reader_reads_only_the_index_writer_runs_the_pipeline(pg_url: str) -> None:
    admin = create_engine(pg_url)
    run_migrations(admin)
    seed_catalog(admin)
    writer = create_engine(pg_url, connect_args={"options": "-c role=descriptor_writer"})
    store = IndexStore(writer)
    from descriptor_pipeline.catalog import CatalogSource

    catalog = CatalogSource(writer)
    genres = DescriptorPartition("genre", IdRange(0, 999))
    extract_raw(catalog, store, genres, 400)
    normalize_partition(store, genres, normalization_context(catalog), 400)
    report = publish_partition(store, genres, 400)
    assert report.counts.inserted > 900
    with writer.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar() == "descriptor_writer"
        super_ = conn.execute(
            sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        ).scalar()
        assert super_ is False
    with admin.begin() as conn:
        conn.execute(sa.text("SET LOCAL ROLE descriptor_reader"))
        assert conn.execute(sa.text("SELECT count(*) FROM descriptor_index")).scalar() > 900
    for table in ("raw_descriptors", "descriptor_quarantine", "music_artist"):
        with admin.begin() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission"):
            conn.execute(sa.text("SET LOCAL ROLE descriptor_reader"))
            conn.execute(sa.text(f"SELECT 1 FROM {table}"))
    with admin.begin() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission"):
        conn.execute(sa.text("SET LOCAL ROLE descriptor_reader"))
        conn.execute(sa.text("CREATE TEMP TABLE scratch (x int)"))
    writer.dispose()
    admin.dispose()


def test_every_connection_checks_that_its_client_is_still_there(pg_url: str) -> None:
    """A stopped step's query must not wait on the server after its process is gone
    (store_engine._postgres_on_connect), through either driver the project's URLs name."""
    for url in (pg_url, pg_url.replace("+psycopg", "+psycopg2")):
        engine = create_engine(url)
        show = "SHOW client_connection_check_interval"
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql(show).scalar() == "1s", url
                conn.rollback()  # the pool's reset does not undo it
            with engine.connect() as conn:
                assert conn.exec_driver_sql(show).scalar() == "1s", url
        finally:
            engine.dispose()


def test_migrations_are_idempotent(pg_url: str) -> None:
    engine = create_engine(pg_url)
    assert run_migrations(engine) == run_migrations(engine) == "0011"
    engine.dispose()


def test_dagster_instance_on_postgres_stores_runs_and_partition_status(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The production instance file, loaded for real: dagster-postgres storage."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    write_instance_file(home, postgres=True)
    # dagster-postgres needs psycopg2: SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3,
    # on which dagster's `NOTIFY run_events, %(id)s` fails (server-side parameters).
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", pg_url.replace("+psycopg", "+psycopg2"))
    # entered, as Dagster intends: that binds this instance as the current defs-state storage
    # (a bare instance would resolve whatever an earlier test in the process left bound)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        dep = Deployment(pg_url, pg_url, instance)
        dep.store  # noqa: B018
        seed_catalog(dep.catalog.engine)
        dep.register()
        assert dep.materialize(ARTISTS).success
        from descriptor_pipeline.defs.partitions import multi_partition_key

        materialized = instance.get_materialized_partitions(dg.AssetKey("descriptor_index"))
        assert multi_partition_key(ARTISTS) in materialized
        with create_engine(pg_url).connect() as conn:
            runs = conn.execute(sa.text("SELECT count(*) FROM runs")).scalar()
            events = conn.execute(
                sa.text(
                    "SELECT count(*) FROM event_logs WHERE dagster_event_type = "
                    "'ASSET_MATERIALIZATION'"
                )
            ).scalar()
        assert runs == 1 and events == 3


def test_init_instance_creates_the_pools_once_and_keeps_an_operators_limit(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`descriptor-pipeline init-instance` on a fresh dagster-postgres instance: both pools get
    the default limit before any run claims them (no first-claim race), and a rerun keeps a
    limit an operator changed since."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    write_instance_file(home, postgres=True)
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", pg_url.replace("+psycopg", "+psycopg2"))
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = [str(Path(sys.executable).parent / "descriptor-pipeline"), "init-instance"]

    def init() -> str:
        return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout

    first = init()
    assert "pool descriptor_catalog: limit 2 (created)" in first
    assert "pool descriptor_index_writer: limit 2 (created)" in first
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.event_log_storage.set_concurrency_slots("descriptor_catalog", 5)
    second = init()
    assert "pool descriptor_catalog: limit 5 (kept)" in second
    assert "pool descriptor_index_writer: limit 2 (kept)" in second


def test_two_publishes_sharing_new_words_take_turns_instead_of_deadlocking(pg_url: str) -> None:
    """Each publish holds its partition in one transaction; the vocabulary trigger inserts the
    new words of every statement. A inserts `alphaword`, B `betaword`, then each the other's:
    with 0010's trigger each waits on the other's uncommitted word and PostgreSQL aborts one
    ("deadlock detected", seen in a 100k backfill). Now B's first new word waits for A."""
    engine = create_engine(pg_url)
    run_migrations(engine)
    probe = "vocab_probe"  # the index's word triggers on a two-column table of the test's own
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {probe} (search_name text, search_aliases text)"))
        for statement in pg._VOCABULARY.postgres_word_triggers(probe):
            conn.execute(sa.text(statement))
    insert = sa.text(f"INSERT INTO {probe} VALUES (:name, '')")
    errors: list[BaseException] = []

    def publish_b() -> None:
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("SET LOCAL deadlock_timeout = '100ms'"))
                conn.execute(insert, {"name": "betaword"})
                conn.execute(insert, {"name": "alphaword"})
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL deadlock_timeout = '100ms'"))
        conn.execute(insert, {"name": "alphaword"})
        b = threading.Thread(target=publish_b)
        b.start()
        time.sleep(1.0)  # B has started; with 0010's trigger it holds betaword by now
        conn.execute(insert, {"name": "betaword"})
    b.join(60)
    assert not b.is_alive() and errors == [], errors
    with engine.connect() as conn:
        words = set(conn.execute(sa.text("SELECT word FROM descriptor_index_words")).scalars())
        assert {"alphaword", "betaword"} <= words
        assert conn.execute(sa.text(f"SELECT count(*) FROM {probe}")).scalar_one() == 4
    engine.dispose()
