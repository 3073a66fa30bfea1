"""Incremental change detection: which catalog rows moved since the incremental sensor's cursor,
and which other resources embed them (the linked-resource fan-out, queued by the sensor).

The cursor is JSON, one keyset position per resource type plus the (id, updated_at) pairs seen
inside the safety window, so late commits are found and nothing is reported twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.catalog_changes import as_utc, changes_after, child_genres, newest_change
from descriptor_pipeline.refresh.settings import DEFAULT_SETTINGS, RefreshSettings


@dataclass
class TypePosition:
    """Keyset position (updated_at, id) already scanned, and the pairs seen inside the window."""

    ts: datetime
    last_id: int
    seen: set[tuple[int, str]] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "ts": self.ts.isoformat(),
            "id": self.last_id,
            "seen": sorted([i, t] for i, t in self.seen),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TypePosition:
        ts = as_utc(data["ts"])
        assert ts is not None
        return cls(ts, int(data["id"]), {(int(i), str(t)) for i, t in data.get("seen", [])})


@dataclass
class IncrementalCursor:
    """The incremental sensor's persisted state: one position per resource type."""

    positions: dict[str, TypePosition] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"v": 1, "types": {t: p.to_json() for t, p in sorted(self.positions.items())}},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> IncrementalCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls({t: TypePosition.from_json(p) for t, p in data.get("types", {}).items()})


@dataclass(frozen=True)
class Change:
    resource_type: str
    resource_id: int
    updated_at: str  # ISO, UTC
    late: bool  # found inside the safety window, behind the high-water mark


def _stamp(value: Any) -> str:
    ts = as_utc(value)
    assert ts is not None
    return ts.isoformat()


def bootstrap_position(
    source: CatalogSource, resource_type: str, settings: RefreshSettings = DEFAULT_SETTINGS
) -> TypePosition | None:
    """Start at the catalog's newest row: what exists already is the full build's work.

    The rows inside the window behind it are marked seen, so they are not taken for late
    commits on the next tick. None when the table is empty (the scan then starts at the epoch).
    """
    if source.config.resource(resource_type).updated_at_column is None:
        return None
    found = newest_change(source, resource_type, settings.safety_window, settings.max_seen)
    if found is None:
        return None
    (newest_id, ts), window = found
    return TypePosition(ts, newest_id, {(i, _stamp(t)) for i, t in window})


def scan_changes(
    source: CatalogSource,
    resource_type: str,
    position: TypePosition | None,
    settings: RefreshSettings = DEFAULT_SETTINGS,
) -> tuple[list[Change], TypePosition | None]:
    """Rows changed since `position`: bounded forward keyset page + late commits in the window.

    The high-water mark moves only as far as the rows actually read, so a burst larger than
    `max_changes_per_type` is worked off over several ticks. A row whose transaction commits
    after the mark passed its `updated_at` is found if it is at most `safety_window` older than
    the mark; the (id, updated_at) pairs already seen inside the window are skipped.
    """
    if source.config.resource(resource_type).updated_at_column is None:
        return [], position  # nothing to scan: growth, full refresh and reconciliation cover it
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    pos = position or TypePosition(epoch, -1)
    forward, window = changes_after(
        source,
        resource_type,
        pos.ts,
        pos.last_id,
        settings.max_changes_per_type,
        late_since=None if position is None else pos.ts - settings.safety_window,
        late_limit=settings.max_window_rows,
    )
    changes: list[Change] = []
    seen = set(pos.seen)
    for rows, late in ((window, True), (forward, False)):
        for resource_id, ts in rows:
            pair = (resource_id, _stamp(ts))
            if pair in seen:
                continue
            seen.add(pair)
            changes.append(Change(resource_type, pair[0], pair[1], late))
    if forward:
        new_id, new_ts = forward[-1]
    else:
        new_ts, new_id = pos.ts, pos.last_id
    if position is None and not forward:
        return changes, None
    horizon = (new_ts - settings.safety_window).isoformat()
    kept = sorted((p for p in seen if p[1] >= horizon), key=lambda p: p[1], reverse=True)
    # over the cap, the oldest pairs are forgotten: at worst a late re-read causes rework
    return changes, TypePosition(new_ts, new_id, set(kept[: settings.max_seen]))


def change_digest(items: Iterable[Any]) -> str:
    """A short digest of a change set: run keys must differ per request (Dagster de-dups)."""
    digest = hashlib.sha1(usedforsecurity=False)
    for item in sorted(str(i) for i in items):
        digest.update(item.encode())
        digest.update(b"\x1f")
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------- linked-resource fan-out


def dependants_of(
    source: CatalogSource, resource_type: str, ids: Sequence[int]
) -> dict[str, set[int]]:
    """Resources whose documents embed the given ones: M2M links plus a genre's child genres."""
    out = source.dependants(resource_type, list(ids))
    if resource_type == "genre" and source.config.genre_parent_column and ids:
        out.setdefault("genre", set()).update(child_genres(source, ids))
    return {t: set(v) for t, v in out.items() if v}
