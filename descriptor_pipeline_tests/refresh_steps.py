"""What the refresh tests (test_refresh.py, test_refresh_queue.py) do by hand where the app and
the daemon would: a catalog write, a sensor tick with a real cursor, a run request launched with
`materialize`; the partitions they aim at; and the reads they compare before and after."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.defs.assets import descriptor_assets
from descriptor_pipeline.demo.seed import SEEDED_AT
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.tables import descriptor_index
from descriptor_pipeline_tests.conftest import Deployment

ARTISTS_0 = DescriptorPartition("artist", IdRange(0, 999))
ARTISTS_1 = DescriptorPartition("artist", IdRange(1000, 1999))
TRACKS_0 = DescriptorPartition("track", IdRange(0, 999))
T0 = SEEDED_AT + timedelta(days=1)  # later than every seeded updated_at


def touch(
    dep: Deployment, resource_type: str, resource_id: int, at: datetime, **values: Any
) -> None:
    """A catalog write as the app does it: new values and updated_at in one statement."""
    table = dep.catalog.resource_table(resource_type)
    cfg = dep.catalog.config.resource(resource_type)
    with dep.catalog.engine.begin() as conn:
        conn.execute(
            table.update()
            .where(table.c[cfg.id_column] == resource_id)
            .values({cfg.updated_at_column: at, **values})
        )


def tick(
    sensor: dg.SensorDefinition, dep: Deployment, cursor: str | None = None
) -> dg.SensorResult:
    # entered, so the resources it builds are torn down with it (Dagster's documented form)
    with dg.build_sensor_context(
        instance=dep.instance, cursor=cursor, resources=dep.resources()
    ) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def launch(dep: Deployment, request: dg.RunRequest, **kwargs: Any) -> dg.ExecuteInProcessResult:
    """What the daemon does with a run request: a run of the three assets, with its tags."""
    return dg.materialize(
        descriptor_assets,
        partition_key=request.partition_key,
        tags=request.tags,
        instance=dep.instance,
        resources=dep.resources(),
        **kwargs,
    )


def partition_keys(requests: list[dg.RunRequest]) -> list[str]:
    return sorted(str(r.partition_key) for r in requests)


def index_rows(dep: Deployment) -> dict[tuple[str, int], tuple[str, object]]:
    with dep.store.engine.connect() as conn:
        return {
            (r.resource_type, r.resource_id): (r.content_hash, r.published_at)
            for r in conn.execute(sa.select(descriptor_index))
        }


def ids_between(source: CatalogSource, resource_type: str, first: int, last: int) -> list[int]:
    table = source.resource_table(resource_type)
    id_col = table.c[source.config.resource(resource_type).id_column]
    with source.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(id_col).where(id_col.between(first, last)).order_by(id_col)
            ).scalars()
        )
