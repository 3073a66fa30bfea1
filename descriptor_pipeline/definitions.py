"""The code location: collects defs/, builds nothing itself.

Every job runs its steps in the run's own process (`in_process_executor`): a partition's three
steps then share one process, one import of pandas and Great Expectations and one connection
pool, instead of a process per step (8 per run before the checks moved into the assets).
"""

from __future__ import annotations

import dagster as dg

from descriptor_pipeline.defs import replay, schedules, sensors
from descriptor_pipeline.defs.assets import descriptor_assets
from descriptor_pipeline.defs.executor import selected_executor
from descriptor_pipeline.defs.jobs import refresh_descriptors_job
from descriptor_pipeline.defs.resources import build_resources

defs = dg.Definitions(
    assets=descriptor_assets,
    jobs=[refresh_descriptors_job, *replay.jobs, *schedules.jobs],
    sensors=sensors.sensors,
    schedules=schedules.schedules,
    resources=build_resources(),
    executor=selected_executor(),  # DESCRIPTOR_EXECUTOR: in_process (default) or celery
)
