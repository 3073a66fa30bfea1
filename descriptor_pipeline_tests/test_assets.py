"""The three assets through `dagster.materialize` on a temp SQLite instance."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from descriptor_pipeline.demo.seed import inject_bad_rows
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.refresh.tags import MAX_SCOPED_IDS, TAG_IDS, parse_scope, scope_tags
from descriptor_pipeline.tables import descriptor_index
from descriptor_pipeline_tests.conftest import Deployment, is_postgres, metadata_of

ASSETS = ("raw_descriptors", "normalized_descriptors", "descriptor_index")
ARTISTS_0 = DescriptorPartition("artist", IdRange(0, 999))
TRACKS_0 = DescriptorPartition("track", IdRange(0, 999))


@pytest.fixture
def deployment(backend_deployment: Deployment) -> Deployment:
    """Every test here runs on SQLite and on PostgreSQL."""
    return backend_deployment


def index_rows(dep: Deployment) -> dict[tuple[str, int], tuple[str, object]]:
    with dep.store.engine.connect() as conn:
        return {
            (r.resource_type, r.resource_id): (r.content_hash, r.published_at)
            for r in conn.execute(sa.select(descriptor_index))
        }


def json_param(dep: Deployment, name: str = "s") -> str:
    return f"CAST(:{name} AS jsonb)" if is_postgres(dep) else f":{name}"


def catalog_exec(dep: Deployment, sql: str, **params: object) -> None:
    with dep.catalog.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def test_full_backfill_publishes_every_resource_and_rerun_writes_nothing(
    deployment: Deployment,
) -> None:
    results = deployment.backfill()
    assert len(results) == 12 and all(r.success for r in results)  # 3 id ranges x 4 types
    published = index_rows(deployment)
    quarantined = deployment.store.quarantine_rows()
    assert quarantined.empty  # the real fixture is clean JSON; oddities are normalized
    with deployment.store.engine.connect() as conn:
        blocked = conn.execute(
            sa.text("SELECT resource_type, resource_id FROM normalized_descriptors WHERE blocked")
        ).all()
    for resource_type in ("genre", "artist", "album", "track"):
        expected = deployment.catalog.count(resource_type) - sum(
            1 for t, _ in blocked if t == resource_type
        )
        assert sum(1 for t, _ in published if t == resource_type) == expected
    assert blocked and all((t, i) not in published for t, i in blocked)

    reruns = [deployment.materialize(p) for p in deployment.register()]
    for result in reruns:
        for asset in ASSETS:
            meta = metadata_of(result, asset)
            assert meta["rows_written"] == 0 and meta["changed_nothing"] is True, (asset, meta)
        raw = metadata_of(result, "raw_descriptors")
        # PostgreSQL fingerprints the catalog range in SQL: an unchanged range is not read
        assert raw["catalog_unchanged"] is is_postgres(deployment)
        if is_postgres(deployment):
            assert raw["rows_read"] == 0
    assert index_rows(deployment) == published  # not even published_at moved


def test_a_change_rewrites_only_its_documents(deployment: Deployment) -> None:
    deployment.register()
    for partition in (ARTISTS_0, TRACKS_0):
        deployment.materialize(partition)
    with deployment.catalog.engine.connect() as conn:
        artist_id, track_id = conn.execute(
            sa.text(
                "SELECT artist_id, track_id FROM music_track_artists WHERE artist_id < 1000 "
                "AND track_id < 1000 LIMIT 1"
            )
        ).one()
    before = index_rows(deployment)
    catalog_exec(
        deployment,
        "UPDATE music_artist SET name = :n WHERE id = :i",
        n="Renamed Artist Ωmega",
        i=artist_id,
    )
    result = deployment.materialize(ARTISTS_0)
    assert metadata_of(result, "raw_descriptors")["rows_updated"] == 1
    assert metadata_of(result, "normalized_descriptors")["rows_updated"] == 1
    assert metadata_of(result, "descriptor_index")["rows_updated"] == 1
    # the track embeds the artist's name: its partition picks the change up from the links
    result = deployment.materialize(TRACKS_0)
    changed_tracks = metadata_of(result, "descriptor_index")["rows_updated"]
    assert changed_tracks >= 1
    after = index_rows(deployment)
    changed = {k for k in after if after[k][0] != before[k][0]}
    assert ("artist", artist_id) in changed and ("track", track_id) in changed
    assert len(changed) == 1 + changed_tracks
    hits = deployment.store.search("Ωmega")
    assert {h.document_key for h in hits} >= {f"artist:{artist_id}", f"track:{track_id}"}


def test_bad_rows_are_quarantined_and_the_rest_is_published(deployment: Deployment) -> None:
    injected = inject_bad_rows(deployment.catalog.engine)
    pg = is_postgres(deployment)
    assert len(injected) == (2 if pg else 3)  # jsonb cannot hold malformed JSON
    results = deployment.backfill()
    assert all(r.success for r in results)
    quarantine = deployment.store.quarantine_rows()
    expected = ["popularity:int_range@1", "name_length@1"]
    expected += [] if pg else ["json_parse:spotify_data"]
    assert sorted(quarantine["rule"]) == sorted(expected)
    assert set(quarantine["stage"]) == (
        {"field", "normalize"} if pg else {"raw", "normalize", "field"}
    )
    assert quarantine["reason"].str.len().min() > 10
    assert quarantine["partition_key"].str.contains(r"\|").all()
    published = index_rows(deployment)
    for row in quarantine.itertuples():
        # a bad field drops that field: the resource is published with its good fields
        assert ((row.resource_type, row.resource_id) in published) == (row.stage == "field")
    assert len(published) > 6000

    # fix the bad album in the catalog: replay by rerunning its partition
    bad = quarantine.loc[quarantine["stage"] == "field"].iloc[0]
    assert bad.reason == "popularity: expected a number, got 'very high'"
    catalog_exec(
        deployment,
        f"UPDATE music_album SET spotify_data = {json_param(deployment)} WHERE id = :i",
        s='{"name": "fixed", "popularity": 3}',
        i=int(bad.resource_id),
    )
    result = deployment.materialize(DescriptorPartition("album", IdRange(0, 999)))
    assert metadata_of(result, "normalized_descriptors")["rows_with_fields_dropped"] == 0
    assert "field" not in set(deployment.store.quarantine_rows()["stage"])
    assert ("album", int(bad.resource_id)) in index_rows(deployment)
    assert len(deployment.store.quarantine_rows()) == len(expected) - 1


def test_a_row_that_turns_bad_keeps_its_last_good_document(deployment: Deployment) -> None:
    deployment.register()
    deployment.materialize(ARTISTS_0)
    before = index_rows(deployment)[("artist", 5)]
    if is_postgres(deployment):  # jsonb holds valid JSON only: make the name unusable instead
        column, bad = "custom_data", """'{"name_override": ["a", "list"]}'::jsonb"""
        stage = "normalized_descriptors"
    else:
        column, bad, stage = "spotify_data", "'{oops'", "raw_descriptors"
    catalog_exec(deployment, f"UPDATE music_artist SET {column} = {bad} WHERE id = 5")
    result = deployment.materialize(ARTISTS_0)
    assert metadata_of(result, stage)["rows_rejected"] == 1
    assert index_rows(deployment)[("artist", 5)] == before
    (row,) = deployment.store.quarantine_rows().itertuples()
    assert (row.resource_id, row.attempts) == (5, 1)
    rerun = deployment.materialize(ARTISTS_0)
    (again,) = deployment.store.quarantine_rows().itertuples()
    if is_postgres(deployment):
        # nothing it was built from moved on (catalog fingerprint, rules): the deterministic
        # rejection is not tried again, and stays in quarantine as it was
        assert metadata_of(rerun, stage)["input_unchanged"] is True
        assert (again.attempts, again.last_seen) == (1, row.last_seen)
    else:  # no fingerprint on SQLite: the raw row is re-read and rejected again
        assert again.attempts == 2 and again.first_seen < again.last_seen


def test_deleted_and_blocked_resources_leave_the_index(deployment: Deployment) -> None:
    deployment.register()
    deployment.materialize(ARTISTS_0)
    assert ("artist", 7) in index_rows(deployment)
    catalog_exec(deployment, "DELETE FROM music_artist WHERE id = 7")
    catalog_exec(
        deployment, "UPDATE music_artist SET custom_data = :c WHERE id = 8", c='{"blocked": true}'
    )
    result = deployment.materialize(ARTISTS_0)
    assert metadata_of(result, "raw_descriptors")["rows_deleted"] == 1
    assert metadata_of(result, "descriptor_index")["rows_deleted"] == 2
    assert metadata_of(result, "descriptor_index")["rows_withdrawn"] >= 1
    rows = index_rows(deployment)
    assert ("artist", 7) not in rows and ("artist", 8) not in rows


def test_a_scoped_run_touches_only_the_ids_it_is_tagged_with(deployment: Deployment) -> None:
    """What the refresh sensors do with the changed ids they found (descriptor/ids)."""
    deployment.register()
    deployment.materialize(ARTISTS_0)
    before = index_rows(deployment)
    catalog_exec(deployment, "UPDATE music_artist SET name = 'Scoped One' WHERE id = 21")
    catalog_exec(deployment, "UPDATE music_artist SET name = 'Scoped Two' WHERE id = 22")
    catalog_exec(deployment, "UPDATE music_artist SET name = 'Not In Scope' WHERE id = 23")
    catalog_exec(deployment, "DELETE FROM music_artist WHERE id = 24")
    result = deployment.materialize(ARTISTS_0, tags=scope_tags([21, 22, 24]))
    raw = metadata_of(result, "raw_descriptors")
    assert (raw["rows_read"], raw["rows_updated"], raw["rows_deleted"]) == (2, 2, 1)
    assert raw["scope"] == "3 ids"
    published = metadata_of(result, "descriptor_index")
    assert (published["rows_read"], published["rows_updated"], published["rows_deleted"]) == (
        2,
        2,
        1,
    )
    after = index_rows(deployment)
    changed = {k for k in before if after.get(k) != before[k]}
    assert changed == {("artist", 21), ("artist", 22), ("artist", 24)}
    assert deployment.store.document("artist", 23)["name"] != "Not In Scope"
    # a whole-partition run picks up what the scoped one was not asked about
    result = deployment.materialize(ARTISTS_0)
    assert metadata_of(result, "descriptor_index")["rows_updated"] == 1
    assert deployment.store.document("artist", 23)["name"] == "Not In Scope"


def test_scope_tags_round_trip_and_fall_back_to_the_whole_partition() -> None:
    assert parse_scope(scope_tags([3, 1, 2, 3])) == frozenset({1, 2, 3})
    assert scope_tags([]) == {} and parse_scope({}) is None
    assert scope_tags(range(MAX_SCOPED_IDS + 1)) == {}  # too many: refresh the whole range
    with pytest.raises(ValueError, match="comma-separated ids"):
        parse_scope({TAG_IDS: "1,two"})


def test_a_packed_backfill_run_equals_one_run_per_partition(
    deployment: Deployment, tmp_path: object
) -> None:
    """A UI backfill packs consecutive id ranges of one type into a run (BackfillPolicy):
    the run materializes each partition, checks them together, and builds the same index."""
    import dagster as dg

    from descriptor_pipeline.defs.assets import PARTITIONS_PER_BACKFILL_RUN, descriptor_assets
    from descriptor_pipeline.defs.partitions import multi_partition_key

    partitions = deployment.register()
    for p in partitions:
        if p.resource_type == "track":
            continue
        assert deployment.materialize(p).success
    tracks = [p for p in partitions if p.resource_type == "track"]
    assert 1 < len(tracks) <= PARTITIONS_PER_BACKFILL_RUN
    job = dg.define_asset_job("packed", partitions_def=descriptor_assets[0].partitions_def)
    resolved = dg.Definitions(
        assets=descriptor_assets, jobs=[job], resources=deployment.resources()
    ).resolve_job_def("packed")
    result = resolved.execute_in_process(
        instance=deployment.instance,
        tags={
            "dagster/asset_partition_range_start": str(multi_partition_key(tracks[0])),
            "dagster/asset_partition_range_end": str(multi_partition_key(tracks[-1])),
        },
    )
    assert result.success
    materialized = {
        str(m.partition) for m in result.asset_materializations_for_node("descriptor_index")
    }
    assert materialized == {str(multi_partition_key(p)) for p in tracks}
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert all(e.passed for e in checks.values()), checks
    suite = checks["normalized_suite"].metadata
    assert suite["rows_validated"].value == deployment.catalog.count("track")
    packed = index_rows(deployment)

    # the same catalog built one partition per run gives the same documents
    with deployment.store.engine.begin() as conn:
        for table in ("descriptor_index", "normalized_descriptors", "raw_descriptors"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE resource_type = 'track'"))
    for p in tracks:
        assert deployment.materialize(p).success
    single = index_rows(deployment)
    assert {k: v[0] for k, v in packed.items()} == {k: v[0] for k, v in single.items()}


def test_an_empty_pair_launched_anyway_passes_its_checks_on_zero_rows(
    deployment: Deployment,
) -> None:
    """The sensors launch only pairs with rows; a UI backfill may still select an empty one."""
    partitions = deployment.register()
    empty = [p for p in partitions if p not in deployment.catalog.occupied(partitions)]
    assert empty, "the demo has empty type x range pairs"
    result = deployment.materialize(empty[0])
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 7 and all(e.passed for e in evaluations)
    suites = [e for e in evaluations if "rows_validated" in e.metadata]
    assert suites and all(e.metadata["rows_validated"].value == 0 for e in suites)
    assert metadata_of(result, "descriptor_index")["rows_written"] == 0


def test_each_materialization_reports_the_rows_its_table_holds(deployment: Deployment) -> None:
    """`dagster/row_count` is what the UI charts: the rows stored for the partition afterwards."""
    deployment.register()
    result = deployment.materialize(DescriptorPartition("artist", IdRange(0, 999)))
    with deployment.store.engine.connect() as conn:
        stored = {
            table: conn.execute(
                sa.text(
                    f"SELECT count(*) FROM {table} WHERE resource_type = 'artist' "
                    "AND resource_id BETWEEN 0 AND 999"
                )
            ).scalar_one()
            for table in ("raw_descriptors", "normalized_descriptors", "descriptor_index")
        }
    for table, count in stored.items():
        assert metadata_of(result, table)["dagster/row_count"] == count
    assert stored["descriptor_index"] > 900
