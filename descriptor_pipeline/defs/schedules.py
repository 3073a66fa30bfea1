"""Schedules: the weekly full refresh (partition runs of `refresh_descriptors`) and the daily
reconciliation (`reconcile_catalog_and_index`, whose repairs go through the refresh queue).

The cron strings are part of the schedules' definitions, read when the code location loads
(`definition_settings.py`), unlike resource config which is resolved per run.

No `from __future__ import annotations`: Dagster reads op/resource annotations at runtime.
"""

import dagster as dg

from descriptor_pipeline.defs.definition_settings import AT_LOAD
from descriptor_pipeline.defs.jobs import reconcile_job, refresh_descriptors_job
from descriptor_pipeline.defs.partitions import all_partitions, multi_partition_key
from descriptor_pipeline.defs.resources import (
    CatalogResource,
    FreshnessSettings,
    IndexStoreResource,
    PipelineSettings,
)
from descriptor_pipeline.freshness import partitions_with_rows, stale_partitions
from descriptor_pipeline.refresh.tags import run_tags
from descriptor_pipeline.stages import normalization_context

# ---------------------------------------------------------------- 5a. full refresh


@dg.schedule(
    job=refresh_descriptors_job,
    cron_schedule=AT_LOAD.full_refresh_cron,
    execution_timezone="UTC",
    description="Runs every partition that is not current (catalog fingerprint, rules or "
    "document version moved on since its last whole pass; `freshness.py`): catches what the "
    "sensors cannot see, e.g. a normalization rule bump, an edit that did not touch "
    "updated_at, a delete. Runs on the bulk lane.",
)
def full_refresh_schedule(
    context: dg.ScheduleEvaluationContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
    settings: PipelineSettings,
    freshness: FreshnessSettings,
) -> list[dg.RunRequest] | dg.SkipReason:
    registered = all_partitions(context.instance)
    if not registered:
        return dg.SkipReason("no id ranges registered yet (the growth sensor adds them)")
    source, store = catalog.source(), index_store.store()
    # only partitions with rows somewhere: most type x range combinations of a big catalog
    # are empty, and each request would cost a run
    occupied = partitions_with_rows(source, store, registered)
    try:
        context_now = normalization_context(source)
    except Exception as exc:  # a bad source profile: every run will say so, name the fix
        context.log.warning(f"freshness gate skipped, every partition requested: {exc}")
        partitions = occupied
    else:
        budget = freshness.gate_budget_seconds
        table = settings.publish_table
        partitions = stale_partitions(
            source, store, occupied, context_now, table, budget, freshness.gate_connections
        )
    if not partitions:
        return dg.SkipReason(
            f"all {len(occupied)} partitions with rows are current: catalog fingerprints, "
            "rules and document version as their last whole pass left them"
        )
    context.log.info(f"{len(partitions)} of {len(occupied)} partitions are not current")
    stamp = context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
    return [
        dg.RunRequest(
            run_key=f"full:{stamp}:{p.key}",
            partition_key=multi_partition_key(p),
            tags=run_tags("full"),
        )
        for p in partitions
    ]


# ---------------------------------------------------------------- 5b. reconciliation


reconcile_schedule = dg.ScheduleDefinition(
    name="reconcile_schedule",
    job=reconcile_job,
    cron_schedule=AT_LOAD.reconcile_cron,
    execution_timezone="UTC",
)
