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
