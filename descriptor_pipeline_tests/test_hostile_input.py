"""A hostile corpus through the real assets: every poison row is quarantined with its rule and
reason, every good row of its partition is published, and nothing fails or is retried."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange, RangeLookup
from descriptor_pipeline_tests.conftest import Deployment, is_postgres, metadata_of

ARTISTS_2 = DescriptorPartition("artist", IdRange(2000, 2999))  # the demo leaves room here
GENRES_2 = DescriptorPartition("genre", IdRange(2000, 2999))  # empty in the demo
STAMP = "2026-11-02 00:00:00"

# id -> (SQL expression for name, updated_at, spotify_data, enrichment_data, custom_data), and the
# rule it must be quarantined under (None: published)
SQLITE_ONLY = {
    2901: ("X'DEADBEEF'", f"'{STAMP}'", "NULL", "NULL", "NULL", "type:name"),  # a BLOB
    2902: ("CAST(X'4180FF' AS TEXT)", f"'{STAMP}'", "NULL", "NULL", "NULL", "encoding:name"),
    2903: ("'a' || char(0) || 'b'", f"'{STAMP}'", "NULL", "NULL", "NULL", "nul:name"),
    2904: ("'Bad Date'", "'not a date'", "NULL", "NULL", "NULL", "timestamp:updated_at"),
    # PostgreSQL's jsonb refuses these two before they reach us
    2905: (
        "'NUL in JSON'",
        f"'{STAMP}'",
        '\'{"name": "x\\u0000y"}\'',
        "NULL",
        "NULL",
        "nul:spotify_data",
    ),
    2906: (
        "'Deep'",
        f"'{STAMP}'",
        "NULL",
        "'" + '{"a":' * 3000 + "1" + "}" * 3000 + "'",
        "NULL",
        "json_parse:enrichment_data",
    ),
}
BOTH = {
    2907: (
        "'Huge'",
        f"'{STAMP}'",
        "NULL",
        "NULL",
        '\'{"notes": "' + "x" * 600_000 + "\"}'",
        "oversized:custom_data",
    ),
    2908: ("'Wrong Shape'", f"'{STAMP}'", "'[1, 2]'", "NULL", "NULL", "json_type:spotify_data"),
    2909: ("'''; DROP TABLE descriptor_index; --'", f"'{STAMP}'", "NULL", "NULL", "NULL", None),
    2910: ("'Evil ' || char(8238) || 'Twin'", f"'{STAMP}'", "NULL", "NULL", "NULL", None),
}


def _insert(dep: Deployment, rows: dict[int, tuple[str, ...]]) -> None:
    with dep.catalog.engine.begin() as conn:
        for resource_id, (name, updated_at, spotify, enrichment, custom, _) in rows.items():
            # literal SQL on purpose: the hostile values are SQL expressions (BLOBs, char(0))
            conn.exec_driver_sql(
                "INSERT INTO music_artist (id, name, created_at, updated_at, spotify_data, "
                f"enrichment_data, custom_data) VALUES ({resource_id}, {name}, '{STAMP}', "
                f"{updated_at}, {spotify}, {enrichment}, {custom})"
            )


def test_poison_rows_are_quarantined_and_the_rest_is_published(
    backend_deployment: Deployment,
) -> None:
    dep = backend_deployment
    rows = dict(BOTH) if is_postgres(dep) else {**SQLITE_ONLY, **BOTH}
    if is_postgres(dep):  # char() is chr() on PostgreSQL
        rows = {i: (r[0].replace("char(", "chr("), *r[1:]) for i, r in rows.items()}
    _insert(dep, rows)
    dep.register()
    result = dep.materialize(ARTISTS_2)
    assert result.success
    quarantined = dep.store.quarantine_rows(ARTISTS_2.key)
    found = dict(zip(quarantined["resource_id"], quarantined["rule"], strict=True))
    expected = {i: r[-1] for i, r in rows.items() if r[-1] is not None}
    assert {i: found.get(i) for i in expected} == expected
    assert all(quarantined["reason"].str.len() > 0)
    published = {
        d["resource_id"]: d["name"]
        for d in (dep.store.document("artist", i) for i in range(2000, 3000))
        if d is not None
    }
    assert not set(expected) & set(published)
    assert published[2909] == "'; DROP TABLE descriptor_index; --"
    assert published[2910] == "Evil Twin"  # the right-to-left override is gone
    assert metadata_of(result, "descriptor_index")["rows_written"] >= 190  # the demo's good rows
    assert dep.store.document("artist", 2000) is not None


def test_a_genre_whose_name_is_a_blob_fails_nothing_else(deployment: Deployment) -> None:
    """The genre vocabulary is built for every normalize step: one bad genre row used to fail
    every partition of every type."""
    with deployment.catalog.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO music_genre (id, name, created_at, updated_at) "
            f"VALUES (2500, X'00FF', '{STAMP}', '{STAMP}')"
        )
    deployment.register()
    genres = deployment.materialize(GENRES_2)
    artists = deployment.materialize(DescriptorPartition("artist", IdRange(0, 999)))
    assert genres.success and artists.success
    quarantined = deployment.store.quarantine_rows(GENRES_2.key)
    assert list(quarantined["rule"]) == ["type:name"]
    assert metadata_of(artists, "descriptor_index")["rows_written"] > 900


def test_a_slow_run_does_not_put_an_older_version_back(backend_deployment: Deployment) -> None:
    """Run A reads version 1 of a row; run B reads and publishes version 2; then A writes.
    Without the upserts' guard A put version 1 back in all three stages, and the incremental
    sensor had already consumed the change."""
    from descriptor_pipeline.catalog import CatalogSource

    dep = backend_deployment
    partition = DescriptorPartition("artist", IdRange(0, 999))
    dep.register()
    assert dep.materialize(partition).success

    def rename(name: str, at: datetime) -> None:
        table = dep.catalog.resource_table("artist")
        with dep.catalog.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == 5).values(name=name, updated_at=at))

    rename("Version One", datetime(2026, 11, 3, tzinfo=UTC))
    snapshot = list(dep.catalog.iter_chunks("artist", partition.id_range, dep.chunk_size))
    rename("Version Two", datetime(2026, 11, 4, tzinfo=UTC))
    assert dep.materialize(partition).success  # run B
    document = dep.store.document("artist", 5)
    assert document is not None and document["name"] == "Version Two"

    stale = pytest.MonkeyPatch()
    stale.setattr(CatalogSource, "iter_chunks", lambda *_args, **_kw: iter(snapshot))
    stale.setattr(CatalogSource, "fingerprint", lambda *_args, **_kw: None)
    try:
        run_a = dep.materialize(partition)  # run A, writing what it read before B
    finally:
        stale.undo()
    assert run_a.success
    # what A did not write is not counted as written: the guard kept B's newer row
    raw = metadata_of(run_a, "raw_descriptors")
    assert (raw["rows_written"], raw["rows_stale"]) == (0, 1)
    document = dep.store.document("artist", 5)
    assert document is not None and document["name"] == "Version Two"
    with dep.store.engine.connect() as conn:
        raw_name = conn.execute(
            sa.text(
                "SELECT name FROM raw_descriptors "
                "WHERE resource_type = 'artist' AND resource_id = 5"
            )
        ).scalar_one()
    assert raw_name == "Version Two"


def test_ids_below_one_are_quarantined_by_the_first_range(backend_deployment: Deployment) -> None:
    """Zero and negative ids fit no range key: the first range reads them and quarantines them
    with a reason, the run counts them, and the index check accounts for them. They used to be
    in neither the stage tables, the quarantine nor the index."""
    dep = backend_deployment
    bad = (0, -7, -(10**12))
    with dep.catalog.engine.begin() as conn:
        for resource_id in bad:
            conn.execute(
                sa.text(
                    "INSERT INTO music_artist (id, name, created_at, updated_at) "
                    "VALUES (:i, :n, :t, :t)"
                ),
                {"i": resource_id, "n": f"Below One {resource_id}", "t": STAMP},
            )
    assert dep.catalog.range_starts(1000)[1] == len(bad)
    first = DescriptorPartition("artist", IdRange(0, 999))
    assert RangeLookup([first.id_range.key, "000001000-000001999"]).range_of(-7) == first.id_range
    dep.register()
    result = dep.materialize(first)
    assert result.success
    quarantined = dep.store.quarantine_rows(first.key)
    below = quarantined[quarantined["resource_id"] < 1]
    assert dict(zip(below["resource_id"], below["rule"], strict=True)) == dict.fromkeys(
        bad, "id_sign:id"
    )
    reason = below.set_index("resource_id")["reason"][-7]
    assert "id -7 is not positive" in reason and "give it a positive id" in reason
    raw = metadata_of(result, "raw_descriptors")
    assert raw["rows_rejected"] == len(bad) and raw["quarantined_total"] >= len(bad)
    assert all(dep.store.document("artist", i) is None for i in bad)
    (index_suite,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "index_suite"
    ]
    assert index_suite.passed and index_suite.metadata["ids_quarantined"].value >= len(bad)
    assert metadata_of(result, "descriptor_index")["rows_written"] > 900  # the rest published

    # fixed in the catalog: the row gets a positive id, and leaves quarantine on the next run
    with dep.catalog.engine.begin() as conn:
        conn.execute(sa.text("UPDATE music_artist SET id = 2999 WHERE id = -7"))
    dep.register()
    assert dep.materialize(first).success
    left = set(dep.store.quarantine_rows(first.key)["resource_id"])
    assert -7 not in left and {0, -(10**12)} <= left
