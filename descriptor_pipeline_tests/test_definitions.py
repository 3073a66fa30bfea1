"""The code location loads as `dagster dev` would load it."""

from __future__ import annotations

import dagster as dg

from descriptor_pipeline.definitions import defs


def test_definitions_are_loadable() -> None:
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"raw_descriptors", "normalized_descriptors", "descriptor_index"}
    assert defs.resolve_job_def("refresh_descriptors").partitions_def is not None
    checks = {k.name for k in graph.asset_check_keys}
    assert checks == {
        "raw_suite",
        "normalized_suite",
        "normalized_drift",
        "quarantine_count",
        "index_suite",
    }
    for job in ("replay_quarantine", "reindex_resources", "reconcile_catalog_and_index"):
        defs.resolve_job_def(job)
    sensors = {s.name for s in defs.sensors or []}
    assert {
        "catalog_growth_sensor",
        "incremental_refresh_sensor",
        "refresh_queue_sensor",
    } <= sensors
    assert {s.name for s in defs.schedules or []} >= {"reconcile_schedule"}
