"""How much one sensor tick may do, and how far back the incremental sensor looks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RefreshSettings:
    """Bounds per sensor tick (a tick has ~60 s) and the incremental safety window."""

    safety_window: timedelta = timedelta(minutes=5)
    max_changes_per_type: int = 5000  # forward rows read per resource type per tick
    max_window_rows: int = 20_000  # rows of the safety window re-read per type per tick
    max_seen: int = 20_000  # (id, updated_at) pairs kept in the cursor per type
    queue_rows_per_tick: int = 5000
    queue_partitions_per_tick: int = 8
    requests_per_tick: int = 1000
    # queued fan-out waits this long at most while a direct change's run is in flight
    fanout_yield: timedelta = timedelta(seconds=30)


DEFAULT_SETTINGS = RefreshSettings()
