"""The code location: collects defs/, builds nothing itself.

Every job runs its steps in the run's own process (`in_process_executor`): a partition's three
steps then share one process, one import of pandas and Great Expectations and one connection
pool, instead of a process per step (8 per run before the checks moved into the assets).
"""

from __future__ import annotations

import dagster as dg

from descriptor_pipeline.defs import jobs, schedules, sensors
from descriptor_pipeline.defs.assets import descriptor_assets
from descriptor_pipeline.defs.resources import build_resources

defs = dg.Definitions(
    assets=descriptor_assets,
    jobs=[jobs.refresh_descriptors_job, *jobs.jobs],
    sensors=sensors.sensors,
    schedules=schedules.schedules,
    resources=build_resources(),
    executor=dg.in_process_executor,
)
