"""Shared fixtures: a seeded demo catalog, an index store and a temp Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.defs.assets import descriptor_assets
from descriptor_pipeline.defs.partitions import (
    all_partitions,
    multi_partition_key,
    register_id_ranges,
)
from descriptor_pipeline.defs.resources import (
    CatalogResource,
    IndexStoreResource,
    PipelineSettings,
    _catalog_source,
    _index_store,
)
from descriptor_pipeline.demo.seed import seed_catalog
from descriptor_pipeline.id_ranges import DescriptorPartition
from descriptor_pipeline.index_store import IndexStore


@dataclass
class Deployment:
    """A catalog, an index and a Dagster instance, as one test sees them."""

    catalog_url: str
    index_url: str
    instance: dg.DagsterInstance
    chunk_size: int = 97  # small and odd so every partition spans several chunks

    @property
    def catalog(self) -> CatalogSource:
        return _catalog_source(self.catalog_url, None)

    @property
    def store(self) -> IndexStore:
        return _index_store(self.index_url)

    def resources(self) -> dict[str, dg.ConfigurableResource]:
        return {
            "catalog": CatalogResource(url=self.catalog_url),
            "index_store": IndexStoreResource(url=self.index_url),
            "settings": PipelineSettings(chunk_size=self.chunk_size),
        }

    def register(self, range_size: int = 1000) -> list[DescriptorPartition]:
        register_id_ranges(self.instance, max(self.catalog.max_ids().values()), range_size)
        return all_partitions(self.instance)

    def materialize(
        self, partition: DescriptorPartition, raise_on_error: bool = True
    ) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            descriptor_assets,
            partition_key=multi_partition_key(partition),
            instance=self.instance,
            resources=self.resources(),
            raise_on_error=raise_on_error,
        )

    def backfill(self, range_size: int = 1000) -> list[dg.ExecuteInProcessResult]:
        return [self.materialize(p) for p in self.register(range_size)]


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


@pytest.fixture
def deployment(tmp_path: Path, instance: dg.DagsterInstance) -> Deployment:
    """The embedded default: SQLite catalog (seeded from the real fixture) and SQLite index."""
    dep = Deployment(
        f"sqlite:///{tmp_path / 'catalog.sqlite'}",
        f"sqlite:///{tmp_path / 'index.sqlite'}",
        instance,
    )
    seed_catalog(dep.catalog.engine, dep.catalog.config)
    return dep


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    (materialization,) = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in materialization.metadata.items()}
