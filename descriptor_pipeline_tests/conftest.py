"""Shared fixtures: a seeded demo catalog, an index store and a temp Dagster instance."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from descriptor_pipeline.catalog import CatalogSource, open_catalog
from descriptor_pipeline.defs.assets import descriptor_assets
from descriptor_pipeline.defs.partitions import (
    all_partitions,
    multi_partition_key,
    register_id_ranges,
)
from descriptor_pipeline.defs.resources import (
    CatalogResource,
    FreshnessSettings,
    IndexStoreResource,
    PipelineSettings,
    QualitySettings,
)
from descriptor_pipeline.demo.seed import seed_catalog
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.index_store import IndexStore, open_store
from descriptor_pipeline.store_engine import create_engine

# helper modules whose asserts should read like a test's when they fail
pytest.register_assert_rewrite(
    "descriptor_pipeline_tests.refresh_steps", "descriptor_pipeline_tests.docs_markdown"
)

REPO = Path(__file__).resolve().parents[1]
LOCATION = "descriptor_pipeline"
PG_ADMIN_URL = os.environ.get(
    "DESCRIPTOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


@dataclass
class Deployment:
    """A catalog, an index and a Dagster instance, as one test sees them."""

    catalog_url: str
    index_url: str
    instance: dg.DagsterInstance
    chunk_size: int = 97  # small and odd so every partition spans several chunks
    quality: QualitySettings = field(default_factory=QualitySettings)
    freshness: FreshnessSettings = field(default_factory=FreshnessSettings)
    mapping_file: str | None = None  # DESCRIPTOR_CATALOG_MAPPING

    @property
    def catalog(self) -> CatalogSource:
        return open_catalog(self.catalog_url, self.mapping_file)

    @property
    def store(self) -> IndexStore:
        return open_store(self.index_url)

    def resources(self) -> dict[str, dg.ConfigurableResource]:
        return {
            "catalog": CatalogResource(url=self.catalog_url, mapping_file=self.mapping_file),
            "index_store": IndexStoreResource(url=self.index_url),
            "settings": PipelineSettings(chunk_size=self.chunk_size),
            "quality": self.quality,
            "freshness": self.freshness,
        }

    def register(self, range_size: int = 1000) -> list[DescriptorPartition]:
        register_id_ranges(self.instance, self.catalog, range_size)
        return all_partitions(self.instance)

    def materialize(
        self,
        partition: DescriptorPartition,
        raise_on_error: bool = True,
        tags: dict[str, str] | None = None,
    ) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            descriptor_assets,
            partition_key=multi_partition_key(partition),
            instance=self.instance,
            resources=self.resources(),
            raise_on_error=raise_on_error,
            tags=tags,
        )

    def backfill(self, range_size: int = 1000) -> list[dg.ExecuteInProcessResult]:
        return [self.materialize(p) for p in self.register(range_size)]


def write_instance_file(
    dagster_home: Path,
    postgres: bool = False,
    overrides: dict[str, dict[str, object]] | None = None,
) -> None:
    """$DAGSTER_HOME/dagster.yaml as scripts/env.sh writes it: the shared settings, plus the
    dagster-postgres storage for the production instance. `overrides` replaces single settings
    of a section (a test shortens the run monitoring's intervals, say)."""
    parts = ["dagster.yaml", *(["dagster.postgres.storage.yaml"] if postgres else [])]
    text = "\n".join((REPO / part).read_text() for part in parts)
    if overrides:
        settings = yaml.safe_load(text)
        for section, values in overrides.items():
            settings.setdefault(section, {}).update(values)
        text = yaml.safe_dump(settings, sort_keys=False)
    (dagster_home / "dagster.yaml").write_text(text)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """For tests that start real Dagster processes: a DAGSTER_HOME with this repo's
    dagster.yaml, a workspace loading the project, and catalog/index URLs in the environment."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    write_instance_file(dagster_home)
    (tmp_path / "workspace.yaml").write_text(
        "load_from:\n"
        "  - python_module:\n"
        "      module_name: descriptor_pipeline.definitions\n"
        f"      working_directory: {REPO}\n"
        f"      location_name: {LOCATION}\n"
    )
    env = {
        "DAGSTER_HOME": str(dagster_home),
        "DESCRIPTOR_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.sqlite'}",
        "DESCRIPTOR_INDEX_URL": f"sqlite:///{tmp_path / 'index.sqlite'}",
        "DESCRIPTOR_CATALOG_MAPPING": "",
        "DESCRIPTOR_DATA_DOCS_URL": "",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield tmp_path


@dataclass
class SeededDemo:
    """Where each end-to-end test starts: the demo catalog and the index store at `home`'s
    URLs, and the id ranges registered on the instance at $DAGSTER_HOME."""

    source: CatalogSource
    store: IndexStore
    ranges: list[IdRange]


def seeded_demo(range_size: int) -> SeededDemo:
    source = open_catalog(os.environ["DESCRIPTOR_CATALOG_URL"], None)
    store = open_store(os.environ["DESCRIPTOR_INDEX_URL"])
    seed_catalog(source.engine, source.config)
    with dg.DagsterInstance.get() as instance:
        ranges = register_id_ranges(instance, source, range_size)
    return SeededDemo(source, store, ranges)


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


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The PostgreSQL server, or a loud skip (a failure when CI=true)."""
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means "no server"
        message = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}: {exc}"
        if IN_CI:
            pytest.fail(f"CI=true requires PostgreSQL. {message}")
        warnings.warn(f"SKIPPING POSTGRES TESTS. {message}", stacklevel=1)
        pytest.skip(f"!!! POSTGRES TESTS SKIPPED: {message}")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A database of its own for one test, dropped afterwards (even with open connections)."""
    name = f"dp_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        for cached in (open_catalog, open_store):
            cached.cache_clear()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend_deployment(
    request: pytest.FixtureRequest, tmp_path: Path, instance: dg.DagsterInstance
) -> Deployment:
    """The same deployment on the embedded default and on PostgreSQL (catalog and index)."""
    if request.param == "sqlite":
        dep = Deployment(
            f"sqlite:///{tmp_path / 'catalog.sqlite'}",
            f"sqlite:///{tmp_path / 'index.sqlite'}",
            instance,
        )
    else:
        url = request.getfixturevalue("pg_url")
        dep = Deployment(url, url, instance)
    dep.store  # noqa: B018 - migrate first: it creates the roles the seed grants to
    seed_catalog(dep.catalog.engine, dep.catalog.config)
    return dep


@pytest.fixture
def pg_deployment(pg_url: str, instance: dg.DagsterInstance) -> Deployment:
    """Catalog and index in one PostgreSQL database of the test's own."""
    dep = Deployment(pg_url, pg_url, instance)
    dep.store  # noqa: B018 - migrations first (roles), then the catalog
    seed_catalog(dep.catalog.engine, dep.catalog.config)
    return dep


def is_postgres(dep: Deployment) -> bool:
    return dep.catalog_url.startswith("postgresql")


__all__ = ["Deployment", "create_engine", "is_postgres", "metadata_of"]
