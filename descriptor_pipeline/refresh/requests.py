"""Targeted reindex requests, `descriptor_refresh_requests`: the public way for another service
to ask for a reindex, in SQL or through `submit_request`:

    INSERT INTO descriptor_refresh_requests (resource_type, resource_id, requested_by,
    requested_at, status) VALUES ('artist', 42, 'cms', now(), 'pending')

`refresh_queue_sensor` moves pending requests into the refresh queue (`intake_requests`), and
marks the ones it cannot serve `rejected`, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.catalog_changes import existing_ids
from descriptor_pipeline.id_ranges import RESOURCE_TYPES
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.refresh.queue import enqueue
from descriptor_pipeline.refresh.settings import DEFAULT_SETTINGS, RefreshSettings
from descriptor_pipeline.tables import refresh_requests


def split_known_ids(
    source: CatalogSource, resource_type: str, ids: Iterable[int]
) -> tuple[list[int], list[int]]:
    """(ids present in the catalog, ids that are not). Raises on an unknown resource type."""
    if resource_type not in RESOURCE_TYPES:
        raise ValueError(
            f"unknown resource type {resource_type!r}; expected one of {', '.join(RESOURCE_TYPES)}"
        )
    wanted = sorted({int(i) for i in ids})
    known = existing_ids(source, resource_type, wanted)
    return [i for i in wanted if i in known], [i for i in wanted if i not in known]


def submit_request(
    store: IndexStore, resource_type: str, ids: Iterable[int], requested_by: str = "api"
) -> int:
    """What another service does (in SQL or through this function) to ask for a reindex."""
    now = datetime.now(UTC)
    rows = [
        {
            "resource_type": resource_type,
            "resource_id": int(i),
            "requested_by": requested_by,
            "requested_at": now,
            "status": "pending",
        }
        for i in ids
    ]
    if rows:
        with store.engine.begin() as conn:
            conn.execute(refresh_requests.insert(), rows)
    return len(rows)


@dataclass
class IntakeReport:
    queued: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


def intake_requests(
    source: CatalogSource, store: IndexStore, settings: RefreshSettings = DEFAULT_SETTINGS
) -> IntakeReport:
    """Move pending requests into the queue; unknown types or ids are marked `rejected` with
    the reason, so the requester can read why instead of the sensor failing."""
    r = refresh_requests
    report = IntakeReport()
    with store.engine.connect() as conn:
        pending = conn.execute(
            sa.select(r.c.request_id, r.c.resource_type, r.c.resource_id)
            .where(r.c.status == "pending")
            .order_by(r.c.request_id)
            .limit(settings.requests_per_tick)
        ).all()
    if not pending:
        return report
    by_type: dict[str, list[tuple[int, int]]] = {}
    for request_id, resource_type, resource_id in pending:
        by_type.setdefault(resource_type, []).append((int(request_id), int(resource_id)))
    now = datetime.now(UTC)
    updates: list[dict[str, Any]] = []
    to_queue: dict[str, list[int]] = {}
    for resource_type, items in by_type.items():
        if resource_type not in RESOURCE_TYPES:
            detail = f"unknown resource type {resource_type!r}"
            updates += [{"rid": rid, "st": "rejected", "detail": detail} for rid, _ in items]
            report.reasons.append(detail)
            continue
        known, unknown = split_known_ids(source, resource_type, [i for _, i in items])
        unknown_set = set(unknown)
        if unknown:
            report.reasons.append(f"no {resource_type} with id {', '.join(map(str, unknown))}")
        for rid, resource_id in items:
            if resource_id in unknown_set:
                detail = f"no {resource_type} with id {resource_id} in the catalog"
                updates.append({"rid": rid, "st": "rejected", "detail": detail})
            else:
                updates.append({"rid": rid, "st": "queued", "detail": None})
        to_queue[resource_type] = known
    with store.engine.begin() as conn:
        enqueue(store, to_queue, "targeted", now=now, conn=conn)
        conn.execute(
            r.update()
            .where(r.c.request_id == sa.bindparam("rid"))
            .values(status=sa.bindparam("st"), detail=sa.bindparam("detail"), processed_at=now),
            updates,
        )
    report.queued = sum(1 for u in updates if u["st"] == "queued")
    report.rejected = sum(1 for u in updates if u["st"] == "rejected")
    return report
