"""The code location: every definition is discovered from the `defs/` folder (the dg project
layout in pyproject.toml's `[tool.dg]`): assets, checks, jobs, sensors, schedules, the resources
and the executor each live in the module of their concern, and nothing is listed twice."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
