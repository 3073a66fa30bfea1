"""Typed resources. Which store is used (SQLite file or Postgres) is configuration: URLs come
from environment variables through `EnvVar`, resolved when a run starts, never at import."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from descriptor_pipeline.catalog import CatalogSource, open_catalog
from descriptor_pipeline.gc_tuning import DEFAULT_YOUNG_THRESHOLD, tune
from descriptor_pipeline.id_ranges import RESOURCE_TYPES
from descriptor_pipeline.index_store import IndexStore, open_store
from descriptor_pipeline.partition_lock import WAIT_SECONDS
from descriptor_pipeline.quality.reports import data_docs_root, data_docs_url
from descriptor_pipeline.quality.results import DEFAULT_PER_TYPE, DEFAULTS, Thresholds
from descriptor_pipeline.refresh.settings import DEFAULT_SETTINGS, RefreshSettings


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
    lock_wait_seconds: float = Field(
        default=WAIT_SECONDS,
        gt=0,
        le=86_400,
        description="How long a stage waits for another run's lock on the same partition and "
        "stage before it fails with PartitionBusy (retried by the step's RetryPolicy); a stage "
        "takes seconds, so a longer wait means a stuck writer.",
    )

    def store(self) -> IndexStore:
        # one engine per URL and process (open_store); the wait rides on this run's copy
        return replace(open_store(self.url), lock_wait=self.lock_wait_seconds)


class PipelineSettings(dg.ConfigurableResource):
    """Sizes an operator tunes from the launchpad without a deploy."""

    chunk_size: int = Field(default=2000, description="Rows per chunk; bounds memory.")
    publish_table: str = Field(
        default="descriptor_index",
        description="Where descriptor_index writes: the published table, or "
        "descriptor_index_shadow for a full rebuild that is swapped in afterwards (Postgres).",
    )
    gc_young_threshold: int = Field(
        default=DEFAULT_YOUNG_THRESHOLD,
        ge=0,
        description="Allocations between two young garbage collections in a run process "
        "(Python's default is 700; the older generations follow at 20 and 100); the loaded "
        "code is also frozen out of collections, and a later run in the same process starts with "
        "one collection. 0 keeps "
        'the interpreter\'s thresholds. Why: docs/benchmarks.md, "The garbage collector".',
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.run is not None:  # a run; not a schedule tick in the code server
            tune(self.gc_young_threshold)


class QualitySettings(dg.ConfigurableResource):
    """The suites' and drift's thresholds, and when and where Data Docs pages are rendered
    (docs/quality.md). Defaults come from the demo catalog."""

    min_vocab_share: float = Field(
        default=DEFAULTS.min_vocab_share,
        description="normalized_warnings: lowest share of all genre and tag values that map "
        "to a genre of the tree.",
    )
    min_genre_coverage: float = Field(
        default=DEFAULTS.min_genre_coverage,
        description="normalized_warnings: lowest share of rows with a genre.",
    )
    genres_in_tree_mostly: float = Field(
        default=DEFAULTS.genres_in_tree_mostly,
        description="normalized_warnings: share of genre values that must still be in the "
        "tree (lower means the tree was edited under the data).",
    )
    max_quarantine_share: float = Field(
        default=DEFAULTS.max_quarantine_share,
        description="quarantine_count: above this share of a partition the check is an ERROR, "
        "else a WARN.",
    )
    drift_min_rows: int = Field(
        default=DEFAULTS.drift_min_rows,
        description="normalized_drift and the distribution expectations: partitions with fewer "
        "rows are too noisy to compare.",
    )
    drift_max_rate_change: float = Field(
        default=DEFAULTS.drift_max_rate_change,
        description="normalized_drift: largest absolute change of a null rate or a source share.",
    )
    drift_max_relative_change: float = Field(
        default=DEFAULTS.drift_max_relative_change,
        description="normalized_drift: largest relative change of counts and length quantiles.",
    )
    drift_min_absolute_change: float = Field(
        default=DEFAULTS.drift_min_absolute_change,
        description="normalized_drift: a relative change counts only past this many characters "
        "or distinct values.",
    )
    per_resource_type: dict[str, dict[str, float]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_PER_TYPE.items()},
        description="Thresholds of one resource type over the ones above, e.g. "
        "{track: {min_genre_coverage: 0.01, present.duration_ms: 0.9}}: any threshold name "
        "above, or present.<field> for the lowest share of rows with a value in that field "
        "(normalized_warnings).",
    )
    data_docs: Literal["on_failure", "always", "never"] = Field(
        default="on_failure",
        description="When a check renders its Great Expectations Data Docs page: when the "
        "suite does not pass (default; rendering costs more than validating), always, or never.",
    )
    data_docs_dir: str | None = Field(
        default=None,
        description="Folder of the Data Docs pages; empty: $DESCRIPTOR_PIPELINE_DATA/data_docs, "
        "else the system temp folder.",
    )
    data_docs_base_url: str = Field(
        default="",
        description="HTTP URL that serves the Data Docs folder (scripts/ui.sh serves it on "
        "http://127.0.0.1:3001): the checks link pages under it, because a browser will not "
        "open a file:// link from the UI. Empty: link the file:// URL.",
    )
    data_docs_keep_days: int = Field(
        default=14,
        description="Rendering a page deletes the Data Docs of runs older than this many days; "
        "0 keeps every page.",
    )

    def thresholds(self, resource_type: str | None = None) -> Thresholds:
        """The thresholds for one resource type (its overrides applied), else the common ones.
        An unknown type or threshold name is a configuration error, said as such."""
        common = Thresholds(
            **{f.name: getattr(self, f.name) for f in fields(Thresholds) if f.name != "min_present"}
        )
        unknown = sorted(set(self.per_resource_type) - set(RESOURCE_TYPES))
        if unknown:
            raise ValueError(
                f"quality.per_resource_type names unknown resource types {unknown}; "
                f"the types are {list(RESOURCE_TYPES)}"
            )
        by_type = {t: common.with_overrides(o) for t, o in self.per_resource_type.items()}
        return by_type.get(resource_type, common) if resource_type else common

    def docs_root(self) -> Path:
        return data_docs_root(self.data_docs_dir)

    def docs_url(self, page: Path) -> str:
        """The link a check shows for a page: under the HTTP base URL when one is set."""
        return data_docs_url(page, self.docs_root(), self.data_docs_base_url)


class FreshnessSettings(dg.ConfigurableResource):
    """How much the refresh sensors and the full-refresh schedule do per tick (a tick has about
    60 s), how far back the incremental sensor looks for late commits, and the size of new id
    ranges (docs/refresh.md). Sensors and schedules read it where the code location builds its
    resources: a tick has no launchpad."""

    safety_window_seconds: int = Field(
        default=int(DEFAULT_SETTINGS.safety_window.total_seconds()),
        description="incremental_refresh_sensor re-reads this many seconds behind its mark, to "
        "catch rows that committed late with an older updated_at.",
    )
    max_changes_per_type: int = Field(
        default=DEFAULT_SETTINGS.max_changes_per_type,
        description="Forward catalog rows the incremental sensor reads per type per tick.",
    )
    max_window_rows: int = Field(
        default=DEFAULT_SETTINGS.max_window_rows,
        description="Safety-window rows re-read per type per tick.",
    )
    max_seen: int = Field(
        default=DEFAULT_SETTINGS.max_seen,
        description="(id, updated_at) pairs kept in the incremental cursor per type.",
    )
    queue_rows_per_tick: int = Field(
        default=DEFAULT_SETTINGS.queue_rows_per_tick,
        description="Refresh-queue rows refresh_queue_sensor reads per tick.",
    )
    queue_partitions_per_tick: int = Field(
        default=DEFAULT_SETTINGS.queue_partitions_per_tick,
        description="Partitions (runs) refresh_queue_sensor requests per tick at most.",
    )
    requests_per_tick: int = Field(
        default=DEFAULT_SETTINGS.requests_per_tick,
        description="Rows of descriptor_refresh_requests taken in per tick.",
    )
    fanout_yield_seconds: int = Field(
        default=int(DEFAULT_SETTINGS.fanout_yield.total_seconds()),
        ge=0,
        description="refresh_queue_sensor holds queued fan-out (resources that embed a changed "
        "one) while an incremental or targeted run is queued or running, for at most this many "
        "seconds after it was queued, so the edited resource's run has the machine to itself.",
    )
    new_ranges_per_tick: int = Field(
        default=50,
        description="Id ranges catalog_growth_sensor adds per tick at most.",
    )
    id_range_size: int = Field(
        default=10_000,
        gt=0,
        description="Ids per new id-range partition, read by catalog_growth_sensor when it adds "
        "ranges (existing ranges keep their size).",
    )
    gate_budget_seconds: float = Field(
        # a tick times out after about 60 s; one fingerprint costs ~0.1 s per 10k rows
        default=30.0,
        description="Seconds full_refresh_schedule's freshness gate spends per tick on "
        "fingerprints; past them the rest are requested unexamined (a run too many, never a "
        "stale partition skipped).",
    )
    gate_connections: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Partitions full_refresh_schedule's freshness gate examines at once, each "
        "on its own connection (a fingerprint is the database's work: one core each).",
    )

    def limits(self) -> RefreshSettings:
        return RefreshSettings(
            safety_window=timedelta(seconds=self.safety_window_seconds),
            max_changes_per_type=self.max_changes_per_type,
            max_window_rows=self.max_window_rows,
            max_seen=self.max_seen,
            queue_rows_per_tick=self.queue_rows_per_tick,
            queue_partitions_per_tick=self.queue_partitions_per_tick,
            requests_per_tick=self.requests_per_tick,
            fanout_yield=timedelta(seconds=self.fanout_yield_seconds),
        )


def build_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "catalog": CatalogResource(
            url=dg.EnvVar("DESCRIPTOR_CATALOG_URL"),
            mapping_file=dg.EnvVar("DESCRIPTOR_CATALOG_MAPPING"),
        ),
        "index_store": IndexStoreResource(url=dg.EnvVar("DESCRIPTOR_INDEX_URL")),
        "settings": PipelineSettings(),
        # scripts/env.sh exports it empty (file:// links); scripts/ui.sh sets the served URL
        "quality": QualitySettings(data_docs_base_url=dg.EnvVar("DESCRIPTOR_DATA_DOCS_URL")),
        "freshness": FreshnessSettings(),
    }


defs = dg.Definitions(resources=build_resources())
