"""The few settings that are part of a Dagster definition, not of a run: the schedules' cron
strings and the sensors' minimum intervals. Dagster fixes them when the code location loads, so
they come from the environment then (a resource is resolved per run or tick, too late). Every
other setting is a resource field (`resources.py`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _seconds(variable: str, default: int) -> int:
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{variable} must be a whole number of seconds >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class DefinitionSettings:
    full_refresh_cron: str = "0 3 * * 0"  # Sundays 03:00 UTC
    reconcile_cron: str = "30 4 * * *"  # daily 04:30 UTC, after the nightly catalog imports
    # The sensor daemon evaluates sensors once per loop of 5 s (dagster 1.13's hard-coded
    # MIN_INTERVAL_LOOP_TIME). A minimum interval of 5 s therefore skipped every other loop
    # whenever a loop came a hair early (a change waited up to 10 s for its run request); 1 s
    # means every loop, a change waits 5 s at most.
    incremental_interval_seconds: int = 1  # catalog change -> run request
    queue_interval_seconds: int = 1  # fan-out, targeted, replay -> run request
    growth_interval_seconds: int = 60

    @classmethod
    def from_env(cls) -> DefinitionSettings:
        d = cls()
        return cls(
            full_refresh_cron=os.environ.get("DESCRIPTOR_FULL_REFRESH_CRON") or d.full_refresh_cron,
            reconcile_cron=os.environ.get("DESCRIPTOR_RECONCILE_CRON") or d.reconcile_cron,
            incremental_interval_seconds=_seconds(
                "DESCRIPTOR_INCREMENTAL_INTERVAL_SECONDS", d.incremental_interval_seconds
            ),
            queue_interval_seconds=_seconds(
                "DESCRIPTOR_QUEUE_INTERVAL_SECONDS", d.queue_interval_seconds
            ),
            growth_interval_seconds=_seconds(
                "DESCRIPTOR_GROWTH_INTERVAL_SECONDS", d.growth_interval_seconds
            ),
        )


AT_LOAD = DefinitionSettings.from_env()
