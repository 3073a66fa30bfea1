"""Typed resources. Which store is used (SQLite file or Postgres) is configuration: URLs come
from environment variables through `EnvVar`, resolved when a run starts, never at import."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from descriptor_pipeline.catalog import CatalogSource, open_catalog
from descriptor_pipeline.index_store import IndexStore, open_store


class CatalogResource(dg.ConfigurableResource):
    """The source catalog (read-only)."""

    url: str = Field(description="SQLAlchemy URL of the catalog database.")
    mapping_file: str | None = Field(
        default=None,
        description="JSON file mapping tables/columns (CatalogConfig); "
        "empty for the demo's Django names.",
    )

    def source(self) -> CatalogSource:
        return open_catalog(self.url, self.mapping_file or None)


class IndexStoreResource(dg.ConfigurableResource):
    """The pipeline's stage tables and the published index."""

    url: str = Field(description="SQLAlchemy URL of the index database.")

    def store(self) -> IndexStore:
        return open_store(self.url)


class PipelineSettings(dg.ConfigurableResource):
    """Sizes an operator tunes from the launchpad without a deploy."""

    chunk_size: int = Field(default=2000, description="Rows per chunk; bounds memory.")
    publish_table: str = Field(
        default="descriptor_index",
        description="Where descriptor_index writes: the published table, or "
        "descriptor_index_shadow for a full rebuild that is swapped in afterwards (Postgres).",
    )
    data_docs: Literal["on_failure", "always", "never"] = Field(
        default="on_failure",
        description="When a check renders its Great Expectations Data Docs page: when the "
        "suite does not pass (default; rendering costs more than validating), always, or never.",
    )
    id_range_size: int = Field(
        default=10_000,
        description="Ids per new id-range partition (existing ranges keep their size).",
    )


def build_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "catalog": CatalogResource(
            url=dg.EnvVar("DESCRIPTOR_CATALOG_URL"),
            mapping_file=dg.EnvVar("DESCRIPTOR_CATALOG_MAPPING"),
        ),
        "index_store": IndexStoreResource(url=dg.EnvVar("DESCRIPTOR_INDEX_URL")),
        "settings": PipelineSettings(),
    }
