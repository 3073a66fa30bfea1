"""How a run executes its steps: in the run's own process (`in_process_executor`).

A partition's three steps then share one process, one import of pandas and Great Expectations
and one connection pool, instead of a process per step (8 per run before the checks moved into
the assets). Discovered with the rest of `defs/`.
"""

from __future__ import annotations

import dagster as dg

defs = dg.Definitions(executor=dg.in_process_executor)
