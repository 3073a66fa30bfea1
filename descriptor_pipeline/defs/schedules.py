"""Schedules (full refresh, reconciliation). Filled by the refresh work."""

from __future__ import annotations

import dagster as dg

schedules: list[dg.ScheduleDefinition] = []
jobs: list[dg.UnresolvedAssetJobDefinition | dg.JobDefinition] = []
