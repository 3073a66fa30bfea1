"""Jobs the UI launches: the whole chain for chosen partitions (a backfill from the launchpad)."""

from __future__ import annotations

import dagster as dg

from descriptor_pipeline.defs.assets import GROUP
from descriptor_pipeline.defs.partitions import descriptor_partitions

refresh_descriptors_job = dg.define_asset_job(
    "refresh_descriptors",
    selection=dg.AssetSelection.groups(GROUP),
    partitions_def=descriptor_partitions,
    description="Extract, normalize and publish the selected partitions.",
)
