"""The code location loads as `dagster dev` would load it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from descriptor_pipeline.definitions import defs
from descriptor_pipeline.defs.definition_settings import DefinitionSettings


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


SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def definitions_snapshot(definitions: dg.Definitions) -> dict[str, Any]:
    """What a Dagster user sees of the code location, as plain data: a change to any of it
    should be a decision, not an accident."""
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "kinds": sorted(node.kinds),
            "owners": list(node.owners),
            "code_version_set": node.code_version is not None,
            "partitions": sorted(d.name for d in partitions.partitions_defs)
            if isinstance(partitions, dg.MultiPartitionsDefinition)
            else None,
            "backfill_policy": str(node.backfill_policy),
            "pool": next(iter(definitions.resolve_assets_def(key).op.pools), None),
            "checks": sorted(
                f"{c.name}{' (blocking)' if graph.get_check_spec(c).blocking else ''}"
                for c in node.check_keys
            ),
        }
    jobs = sorted(j.name for j in definitions.resolve_all_job_defs() if not j.name.startswith("__"))
    return {
        "assets": assets,
        "jobs": jobs,
        "sensors": {
            s.name: {"interval_s": s.minimum_interval_seconds, "job": s.job_name}
            for s in sorted(definitions.sensors or [], key=lambda s: s.name)
        },
        "schedules": {
            s.name: {"cron": s.cron_schedule, "job": s.job_name}
            for s in sorted(definitions.schedules or [], key=lambda s: s.name)
        },
        "resources": sorted(definitions.resources or {}),
        "executor": definitions.executor.name if definitions.executor else None,
    }


def test_loaded_definitions_match_the_snapshot() -> None:
    """Regenerate after a deliberate change with
    `UPDATE_SNAPSHOT=1 .venv/bin/pytest descriptor_pipeline_tests/test_definitions.py`."""
    current = definitions_snapshot(defs)
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    assert json.loads(SNAPSHOT.read_text()) == current


def test_definition_settings_come_from_the_environment_at_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DESCRIPTOR_INCREMENTAL_INTERVAL_SECONDS", "2")
    monkeypatch.setenv("DESCRIPTOR_RECONCILE_CRON", "0 5 * * *")
    loaded = DefinitionSettings.from_env()
    assert loaded.incremental_interval_seconds == 2 and loaded.reconcile_cron == "0 5 * * *"
    monkeypatch.setenv("DESCRIPTOR_QUEUE_INTERVAL_SECONDS", "0")
    with pytest.raises(ValueError, match="DESCRIPTOR_QUEUE_INTERVAL_SECONDS"):
        DefinitionSettings.from_env()
