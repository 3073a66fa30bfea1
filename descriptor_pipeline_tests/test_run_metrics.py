"""The metrics of a run count what that run wrote: a rerun with no change reports no write and
no withdrawal, and a blocked resource is counted as withdrawn once, by the run that took it out."""

from __future__ import annotations

import sqlalchemy as sa

from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline_tests.conftest import Deployment, metadata_of

ARTISTS_0 = DescriptorPartition("artist", IdRange(0, 999))
STAGES = ("raw_descriptors", "normalized_descriptors", "descriptor_index")


def test_a_no_change_rerun_writes_and_withdraws_nothing(backend_deployment: Deployment) -> None:
    dep = backend_deployment
    dep.register()
    assert dep.materialize(ARTISTS_0).success
    blocked_before = set(dep.store.blocked_ids(ARTISTS_0))
    with dep.catalog.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE music_artist SET custom_data = :c WHERE id IN (8, 9)"),
            {"c": '{"blocked": true}'},
        )
    blocking = dep.materialize(ARTISTS_0)
    published = metadata_of(blocking, "descriptor_index")
    assert (published["rows_withdrawn"], published["rows_deleted"]) == (2, 2)
    # what the index suite's reconciliation counts as withdrawn, filtered by the database
    assert {8, 9} - blocked_before == {8, 9}
    assert set(dep.store.blocked_ids(ARTISTS_0)) == blocked_before | {8, 9}
    for _ in range(2):  # it used to report the same withdrawals on every rerun
        rerun = dep.materialize(ARTISTS_0)
        for asset in STAGES:
            metadata = metadata_of(rerun, asset)
            assert metadata["rows_written"] == 0, asset
            assert metadata["rows_withdrawn"] == 0 and metadata["rows_stale"] == 0, asset
    assert dep.store.document("artist", 8) is None and dep.store.document("artist", 9) is None
