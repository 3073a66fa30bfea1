"""Permanent errors an operator can cause: each says what is wrong and what to do, and none is
retried as if it were transient (no step retry, and the run tagged against the daemon's run
retry). A missing table, a missing database, an unknown resource type, an id not in the catalog."""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.defs.assets import NO_RUN_RETRY, descriptor_assets
from descriptor_pipeline.defs.jobs import reindex_job
from descriptor_pipeline.defs.partitions import multi_partition_key
from descriptor_pipeline.defs.resources import IndexStoreResource, QualitySettings
from descriptor_pipeline.id_ranges import DescriptorPartition
from descriptor_pipeline.index_store import open_store
from descriptor_pipeline_tests.conftest import Deployment

RETRY_EVENTS = ("STEP_UP_FOR_RETRY", "STEP_RESTARTED")


def run_assets(
    dep: Deployment, partition: DescriptorPartition, **resources: dg.ConfigurableResource
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        descriptor_assets,
        partition_key=multi_partition_key(partition),
        instance=dep.instance,
        resources={**dep.resources(), **resources},
        raise_on_error=False,
    )


def failure_of(result: dg.ExecuteInProcessResult) -> tuple[str, list[str]]:
    """The failed step's message and the retry events of the run (none expected)."""
    assert not result.success
    retries = [e.event_type_value for e in result.all_events if e.event_type_value in RETRY_EVENTS]
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    data = failure.step_failure_data
    message = (data.user_failure_data.description if data.user_failure_data else None) or (
        data.error.message if data.error else ""
    )
    return message, retries


def assert_not_retried(dep: Deployment, result: dg.ExecuteInProcessResult) -> str:
    message, retries = failure_of(result)
    assert retries == [], retries  # the step's RetryPolicy did not fire
    run = dep.instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags.items() >= NO_RUN_RETRY.items()  # nor the daemon's
    return message


def test_a_missing_index_table_names_it_and_says_what_to_do(deployment: Deployment) -> None:
    (partition, *_) = deployment.register()
    with deployment.store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE descriptor_quality_profile"))
    open_store.cache_clear()  # the next run opens (and checks) the store again

    message = assert_not_retried(deployment, run_assets(deployment, partition))
    assert "has no table descriptor_quality_profile" in message
    assert "restore it from a backup or rebuild the index database" in message
    assert "no migration" not in message  # every migration ran: the table was dropped


def test_a_missing_index_database_says_create_it(deployment: Deployment, pg_admin_url: str) -> None:
    (partition, *_) = deployment.register()
    url = pg_admin_url.rsplit("/", 1)[0] + "/descriptor_no_such_database"
    result = run_assets(deployment, partition, index_store=IndexStoreResource(url=url))
    message = assert_not_retried(deployment, result)
    assert "index database 'descriptor_no_such_database' does not exist" in message
    assert "createdb descriptor_no_such_database" in message
    assert "descriptor-pipeline migrate" in message


def test_an_unknown_resource_type_is_refused_with_the_known_ones(deployment: Deployment) -> None:
    (partition, *_) = deployment.register()
    # in the launchpad of reindex_resources: refused before a run starts
    with pytest.raises(dg.DagsterInvalidConfigError, match="podcast"):
        reindex_job.execute_in_process(
            run_config={
                "ops": {"queue_reindex": {"config": {"resource_type": "podcast", "ids": [1]}}}
            },
            resources=deployment.resources(),
            instance=deployment.instance,
        )
    # in the quality resource's per-type thresholds: the run fails once, naming the types
    quality = QualitySettings(per_resource_type={"podcast": {"min_vocab_share": 0.5}})
    message = assert_not_retried(deployment, run_assets(deployment, partition, quality=quality))
    assert "unknown resource types ['podcast']" in message
    assert "the types are" in message and "'artist'" in message


def test_an_unknown_threshold_name_is_refused(deployment: Deployment) -> None:
    (partition, *_) = deployment.register()
    quality = QualitySettings(per_resource_type={"artist": {"min_vocab_shar": 0.5}})
    message = assert_not_retried(deployment, run_assets(deployment, partition, quality=quality))
    assert "unknown quality thresholds ['min_vocab_shar']" in message
    assert "present.<field>" in message


def test_an_id_not_in_the_catalog_is_named_and_not_retried(deployment: Deployment) -> None:
    deployment.register()
    result = reindex_job.execute_in_process(
        run_config={
            "ops": {"queue_reindex": {"config": {"resource_type": "artist", "ids": [1, 9_999_999]}}}
        },
        resources=deployment.resources(),
        instance=deployment.instance,
        raise_on_error=False,
    )
    message = assert_not_retried(deployment, result)  # the daemon re-ran it twice, re-queueing
    assert "1 of 2 artist ids are not in the catalog: [9999999]" in message
    assert "The 1 known ids were queued" in message
