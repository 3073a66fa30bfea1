"""The seed's original style, for comparison: one task per resource, each its own round trips
and commit (what a Celery task per resource would do), using the same normalization code."""

from __future__ import annotations

import time
from typing import Any

import orjson
import psycopg

from descriptor_pipeline.catalog_config import CatalogConfig
from descriptor_pipeline.documents import build_document
from descriptor_pipeline.normalization import normalize_row
from descriptor_pipeline.rejections import RejectedValue
from descriptor_pipeline.rules import NormalizationContext

DDL = """CREATE TABLE IF NOT EXISTS naive_index (
    resource_type text, resource_id bigint, document jsonb, search_text text,
    PRIMARY KEY (resource_type, resource_id))"""


def index_one(
    conn: psycopg.Connection,
    config: CatalogConfig,
    resource_type: str,
    resource_id: int,
    ctx: NormalizationContext,
) -> bool:
    """SELECT the row and its links, normalize, upsert, commit: one resource, one task."""
    table = config.resource(resource_type).table
    row = conn.execute(
        f"SELECT id, name, spotify_data::text, enrichment_data::text, custom_data::text "
        f"FROM {table} WHERE id = %s",
        (resource_id,),
    ).fetchone()
    if row is None:
        conn.commit()
        return False
    links: dict[str, list[dict[str, Any]]] = {}
    for key, link, target_type in config.links_of(resource_type):
        target = config.resource(target_type).table
        links[key] = [
            {"id": i, "name": n}
            for i, n in conn.execute(
                f"SELECT t.id, t.name FROM {link.table} l "
                f"JOIN {target} t ON t.id = l.{link.to_column} WHERE l.{link.from_column} = %s",
                (resource_id,),
            )
        ]
    raw = {
        "resource_id": row[0],
        "name": row[1],
        "spotify_data": row[2],
        "enrichment_data": row[3],
        "custom_data": row[4],
        "links": orjson.dumps(links).decode(),
        "source_updated_at": None,
    }
    try:
        values = normalize_row(resource_type, raw, ctx)
    except RejectedValue:
        conn.commit()
        return False
    provenance = values.pop("provenance")
    document = build_document(
        resource_type,
        {
            **values,
            "resource_id": resource_id,
            "normalization_version": "naive",
            "provenance": orjson.dumps(provenance).decode(),
            "source_updated_at": None,
        },
    )
    conn.execute(
        "INSERT INTO naive_index VALUES (%s, %s, %s, %s) ON CONFLICT (resource_type, resource_id)"
        " DO UPDATE SET document = excluded.document, search_text = excluded.search_text",
        (resource_type, resource_id, document["document"], document["search_name"]),
    )
    conn.commit()
    return True


def run_naive(dsn: str, sample: list[tuple[str, int]], ctx: NormalizationContext) -> float:
    """Seconds to index `sample` one resource at a time."""
    config = CatalogConfig()
    with psycopg.connect(dsn) as conn:
        conn.execute(DDL)
        conn.execute("TRUNCATE naive_index")
        conn.commit()
        started = time.perf_counter()
        for resource_type, resource_id in sample:
            index_one(conn, config, resource_type, resource_id, ctx)
        return time.perf_counter() - started
