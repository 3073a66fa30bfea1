"""The retry matrix through Dagster's machinery: a transient error is retried, a permanent one
fails once and tells the daemon's run retries to leave it alone; the instance file says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.defs.assets import NO_RUN_RETRY
from descriptor_pipeline.faults import is_transient
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.refresh.tags import TAG_IDS
from descriptor_pipeline_tests.conftest import REPO, Deployment, write_instance_file

ARTISTS_0 = DescriptorPartition("artist", IdRange(0, 999))


def _events(result: dg.ExecuteInProcessResult, event_type: dg.DagsterEventType) -> list[str]:
    return [e.step_key or "" for e in result.all_events if e.event_type == event_type]


def _locked_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The catalog read fails once as a locked SQLite file does, then works."""
    original = CatalogSource.iter_chunks
    calls: list[int] = []

    def flaky(self: CatalogSource, *args: Any, **kwargs: Any) -> Iterator[Any]:
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.OperationalError("SELECT ...", {}, Exception("database is locked"))
        yield from original(self, *args, **kwargs)

    monkeypatch.setattr(CatalogSource, "iter_chunks", flaky)
    return calls


def test_a_transient_error_is_retried_by_the_step_and_the_run_succeeds(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = deployment
    dep.register()
    calls = _locked_once(monkeypatch)
    result = dep.materialize(ARTISTS_0)
    assert result.success and len(calls) == 2
    assert _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == ["raw_descriptors"]
    run = dep.instance.get_run_by_id(result.run_id)
    assert run is not None and "dagster/retry_on_asset_or_op_failure" not in run.tags


def test_a_permanent_error_fails_once_and_is_not_retried_by_the_run_either(
    deployment: Deployment,
) -> None:
    dep = deployment
    dep.register()
    with dep.catalog.engine.begin() as conn:  # an operator dropped or renamed the table
        conn.execute(sa.text("DROP TABLE music_artist_genres"))
    result = dep.materialize(ARTISTS_0, raise_on_error=False)
    assert not result.success
    assert _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert _events(result, dg.DagsterEventType.STEP_FAILURE) == ["raw_descriptors"]
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "not transient" in failure.step_failure_data.user_failure_data.description
    run = dep.instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags.items() >= NO_RUN_RETRY.items()


def test_a_scope_tag_naming_ids_outside_the_partition_fails_once_and_says_which(
    deployment: Deployment,
) -> None:
    """An operator typed the tag in the launchpad for the wrong partition: the ids would be read
    by no stage, so the run fails, names them, and is not retried; nothing is written."""
    dep = deployment
    dep.register()
    outside = ARTISTS_0.id_range.last + 1
    result = dep.materialize(ARTISTS_0, raise_on_error=False, tags={TAG_IDS: f"5,{outside}"})
    assert not result.success
    assert _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert _events(result, dg.DagsterEventType.STEP_FAILURE) == ["raw_descriptors"]
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert f"outside this run's id ranges ({ARTISTS_0.id_range.key}): [{outside}]" in description
    run = dep.instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags.items() >= NO_RUN_RETRY.items()
    assert dep.store.document("artist", 5) is None


def test_errors_are_told_apart_by_kind_not_by_class_alone() -> None:
    locked = sa.exc.OperationalError("x", {}, Exception("database is locked"))
    missing = sa.exc.OperationalError("x", {}, Exception("no such table: music_artist"))
    assert is_transient(locked) and not is_transient(missing)
    assert is_transient(ConnectionResetError()) and not is_transient(KeyError("name"))
    assert not is_transient(sa.exc.ProgrammingError("x", {}, Exception("syntax error")))


def test_the_instance_file_retries_runs_and_keys_the_per_type_limit_on_dagster_tags(
    tmp_path: Any,
) -> None:
    write_instance_file(tmp_path)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_retries_retry_on_asset_or_op_failure
        assert instance.run_monitoring_enabled
        # a dead run is failed (and its pool slots freed) within bounds an operator can wait for
        assert 0 < instance.run_monitoring_max_runtime_seconds <= 3600
        assert instance.run_monitoring_start_timeout_seconds <= 300
        assert instance.run_monitoring_poll_interval_seconds <= 30
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] > 0
        assert instance.run_monitoring_max_resume_run_attempts == 0  # default launcher: no resume
        config = instance.get_concurrency_config()
        limits = config.run_queue_config.tag_concurrency_limits
        assert {"key": "dagster/partition/resource_type", "limit": 3} in [
            {k: v for k, v in limit.items() if k != "value"} for limit in limits
        ]
        assert config.pool_config.default_pool_limit == 2
    assert "concurrency:" not in (REPO / "dagster.postgres.storage.yaml").read_text()
    # the production instance file is the same settings plus storage: monitoring included
    write_instance_file(tmp_path, postgres=True)
    production = yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    assert (
        production["run_monitoring"]
        == yaml.safe_load((REPO / "dagster.yaml").read_text())["run_monitoring"]
    )
    assert "postgres" in production["storage"]


def test_the_cli_reports_an_unreachable_instance_in_one_line(tmp_path: Any) -> None:
    """The Dagster instance's PostgreSQL is down: after dagster-postgres's own retry warnings,
    one clear line and exit 3, no traceback."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    home = tmp_path / "dagster_home"
    home.mkdir()
    write_instance_file(home, postgres=True)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": "postgresql+psycopg2://postgres@127.0.0.1:1/nothing",
        "DESCRIPTOR_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.sqlite'}",
        "DESCRIPTOR_INDEX_URL": f"sqlite:///{tmp_path / 'index.sqlite'}",
    }
    cli = str(Path(sys.executable).parent / "descriptor-pipeline")
    subprocess.run([cli, "seed-demo"], env=env, check=True, capture_output=True, timeout=120)
    done = subprocess.run([cli, "backfill"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert "Traceback" not in done.stderr
    assert last.startswith("descriptor-pipeline backfill: a database or the Dagster instance")
    assert "unreachable" in last and "DagsterPostgresException" in last
