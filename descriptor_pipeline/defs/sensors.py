"""Sensors that keep the index fresh. Filled by the refresh work."""

from __future__ import annotations

import dagster as dg

sensors: list[dg.SensorDefinition] = []
