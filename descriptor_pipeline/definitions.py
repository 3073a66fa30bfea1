"""The code location: collects defs/, builds nothing itself."""

from __future__ import annotations

import dagster as dg

from descriptor_pipeline.defs import checks, schedules, sensors
from descriptor_pipeline.defs.assets import descriptor_assets
from descriptor_pipeline.defs.jobs import refresh_descriptors_job
from descriptor_pipeline.defs.resources import build_resources

defs = dg.Definitions(
    assets=descriptor_assets,
    asset_checks=checks.asset_checks,
    jobs=[refresh_descriptors_job, *checks.jobs, *schedules.jobs],
    sensors=sensors.sensors,
    schedules=schedules.schedules,
    resources=build_resources(),
)
