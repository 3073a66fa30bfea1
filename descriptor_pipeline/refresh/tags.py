"""Run tags of refresh runs (plain strings): the mode, the lane, and the ids a run is scoped to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from descriptor_pipeline.celery_routing import celery_tags

TAG_MODE = "descriptor/refresh_mode"
TAG_LANE = "descriptor/lane"  # "fresh" (small, latency-bound) or "bulk" (whole catalog)
BULK_MODES = frozenset({"full", "reconcile"})
# when one queued partition holds rows for several reasons, the run is tagged with the first
QUEUE_REASONS = ("targeted", "replay", "fanout", "reconcile")


TAG_IDS = "descriptor/ids"
MAX_SCOPED_IDS = 200  # more changed rows than this in one partition: refresh the whole range


def scope_tags(ids: Iterable[int]) -> dict[str, str]:
    """Tell the run which ids changed, so it reads and writes only those (empty: all)."""
    unique = sorted({int(i) for i in ids})
    if not unique or len(unique) > MAX_SCOPED_IDS:
        return {}
    return {TAG_IDS: ",".join(map(str, unique))}


def parse_scope(tags: Mapping[str, str]) -> frozenset[int] | None:
    """The ids a run is scoped to, or None for the whole partition."""
    value = tags.get(TAG_IDS, "").strip()
    if not value:
        return None
    try:
        return frozenset(int(part) for part in value.split(","))
    except ValueError:
        raise ValueError(
            f"run tag {TAG_IDS} must be comma-separated ids, got {value[:80]!r}"
        ) from None


def run_tags(mode: str, **extra: str) -> dict[str, str]:
    """Tags every refresh run carries: the run coordinator limits concurrency by the lane
    (and by `dagster/partition/resource_type`, which Dagster sets on single-partition runs); with
    the Celery executor the lane also picks the queue (`celery_routing`)."""
    lane = "bulk" if mode in BULK_MODES else "fresh"
    return {TAG_MODE: mode, TAG_LANE: lane, **celery_tags(lane, mode), **extra}
