"""Every job of the code location: the asset job the sensors and schedules launch, and the
operator jobs of the launchpad, which queue work for `refresh_queue_sensor`."""

from __future__ import annotations

import dagster as dg

from descriptor_pipeline.defs.assets import GROUP
from descriptor_pipeline.defs.ops import queue_quarantined, queue_reindex, reconcile_index
from descriptor_pipeline.defs.partitions import descriptor_partitions
from descriptor_pipeline.refresh.tags import run_tags

refresh_descriptors_job = dg.define_asset_job(
    "refresh_descriptors",
    selection=dg.AssetSelection.groups(GROUP),
    partitions_def=descriptor_partitions,
    description="Extract, normalize and publish the selected partitions.",
)


@dg.job(name="reconcile_catalog_and_index", tags=run_tags("reconcile"))
def reconcile_job() -> None:
    """Daily diff of catalog and index; repairs are queued, not run inline."""
    reconcile_index()


@dg.job(name="reindex_resources", tags=run_tags("targeted"))
def reindex_job() -> None:
    """Reindex given resources (run config: resource_type, ids); refresh_queue_sensor then
    refreshes their partitions."""
    queue_reindex()


@dg.job(name="replay_quarantine", tags=run_tags("replay"))
def replay_quarantine_job() -> None:
    """Replay quarantined rows after a fix of a rule or of the catalog data: queues them, and
    refresh_queue_sensor reruns the real assets scoped to those ids."""
    queue_quarantined()
