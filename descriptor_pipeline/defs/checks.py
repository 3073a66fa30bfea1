"""Asset checks: the GX suites of `quality.py` run per partition, drift, quarantine, replay.

Each check reads its partition's stored rows (a partition holds at most ~10k rows, so it is read
whole) and hands a frame to `quality`; the check only turns the plain result into Dagster metadata.
`normalized_suite` and `raw_suite` are blocking: a failed critical expectation (severity ERROR)
stops the downstream asset for that partition in that run; warnings (WARN) never block.

No `from __future__ import annotations` here: Dagster reads the context annotation at runtime.
"""

import time
from collections import OrderedDict
from typing import Any

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from descriptor_pipeline import quality
from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.defs.assets import (
    descriptor_index,
    normalized_descriptors,
    raw_descriptors,
)
from descriptor_pipeline.defs.partitions import partition_of
from descriptor_pipeline.defs.resources import CatalogResource, IndexStoreResource, PipelineSettings
from descriptor_pipeline.id_ranges import DescriptorPartition, IdRange
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.index_store import descriptor_index as index_table
from descriptor_pipeline.index_store import normalized_descriptors as normalized_table
from descriptor_pipeline.index_store import raw_descriptors as raw_table
from descriptor_pipeline.normalization import GenreVocabulary
from descriptor_pipeline.stages import (
    extract_raw,
    normalization_context,
    normalize_partition,
    publish_partition,
)

READ_CHUNK = 5000  # rows per read when loading a whole partition for validation


def read_partition(
    store: IndexStore, table: sa.Table, partition: DescriptorPartition
) -> pd.DataFrame:
    """All of a partition's rows of one stage table (keyset pages, concatenated)."""
    frames = [f for _, f in store.iter_rows(table, partition, READ_CHUNK) if len(f)]
    if not frames:
        return pd.DataFrame(columns=[c.name for c in table.columns])
    return pd.concat(frames, ignore_index=True)


def catalog_ids(source: CatalogSource, partition: DescriptorPartition) -> list[int]:
    table = source.resource_table(partition.resource_type)
    id_col = table.c[source.config.resource(partition.resource_type).id_column]
    span = partition.id_range
    with source.engine.connect() as conn:
        return [
            int(r[0])
            for r in conn.execute(sa.select(id_col).where(id_col.between(span.first, span.last)))
        ]


# The blocking suite and the drift check of one run and partition share one validation.
_normalized_memo: "OrderedDict[tuple[str, str], tuple[quality.SuiteResult, pd.DataFrame]]" = (
    OrderedDict()
)


def _validate_normalized(
    run_id: str, partition: DescriptorPartition, store: IndexStore, source: CatalogSource
) -> tuple[quality.SuiteResult, pd.DataFrame]:
    key = (run_id, partition.key)
    if key not in _normalized_memo:
        stored = read_partition(store, normalized_table, partition)
        vocabulary = GenreVocabulary.from_names(source.genre_names())
        frame = quality.normalized_frame(partition.resource_type, stored, vocabulary)
        result = quality.validate(
            "normalized", partition.resource_type, frame, quality.Thresholds.from_env()
        )
        _normalized_memo[key] = (result, stored)
        while len(_normalized_memo) > 8:
            _normalized_memo.popitem(last=False)
    return _normalized_memo[key]


def _summary_table(result: quality.SuiteResult) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        records=[dg.TableRecord(row) for row in result.summary_rows()],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("expectation", "string"),
                dg.TableColumn("severity", "string"),
                dg.TableColumn("passed", "bool"),
                dg.TableColumn("observed", "string"),
                dg.TableColumn("failing_examples", "string"),
            ]
        ),
    )


def suite_check_result(
    context: dg.AssetCheckExecutionContext,
    partition: DescriptorPartition,
    result: quality.SuiteResult,
    extra: dict[str, Any] | None = None,
) -> dg.AssetCheckResult:
    """A suite's outcome as Dagster sees it: ERROR if a critical expectation failed, else WARN."""
    docs = quality.render_data_docs(result, context.run.run_id, partition.key)
    metadata: dict[str, Any] = {
        "summary": _summary_table(result),
        "expectations": len(result.expectations),
        "passed": result.passed,
        "failed": result.failed,
        "failed_expectations": ", ".join(result.failed_names()) or "none",
        "rows_validated": result.rows,
        "validation_seconds": round(result.seconds, 3),
        "data_docs": dg.MetadataValue.path(str(docs)),
        "data_docs_url": dg.MetadataValue.url(docs.as_uri()),
        **(extra or {}),
    }
    severity = dg.AssetCheckSeverity.ERROR if result.critical_failed else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(passed=result.success, severity=severity, metadata=metadata)


@dg.asset_check(
    asset=raw_descriptors,
    blocking=True,
    description="GX raw suite: required columns, parseable JSON objects, unique ids (critical); "
    "updated_at not in the future (warning).",
)
def raw_suite(
    context: dg.AssetCheckExecutionContext, index_store: IndexStoreResource
) -> dg.AssetCheckResult:
    partition = partition_of(context)
    stored = read_partition(index_store.store(), raw_table, partition)
    result = quality.validate(
        "raw", partition.resource_type, quality.raw_frame(stored), quality.Thresholds.from_env()
    )
    return suite_check_result(context, partition, result)


@dg.asset_check(
    asset=normalized_descriptors,
    blocking=True,
    description="GX normalized suite: schema, names, text lengths, provenance, control chars, "
    "normalization version (critical: blocks publishing); genre vocabulary and coverage "
    "(warning).",
)
def normalized_suite(
    context: dg.AssetCheckExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
) -> dg.AssetCheckResult:
    partition = partition_of(context)
    result, _ = _validate_normalized(
        context.run.run_id, partition, index_store.store(), catalog.source()
    )
    return suite_check_result(context, partition, result)


@dg.asset_check(
    asset=normalized_descriptors,
    description="The partition's profile (null rates and source shares per field, distinct "
    "tags, text-length quantiles) against the last run that passed the critical suite.",
)
def normalized_drift(
    context: dg.AssetCheckExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
) -> dg.AssetCheckResult:
    started = time.perf_counter()
    partition = partition_of(context)
    store = index_store.store()
    thresholds = quality.Thresholds.from_env()
    result, stored = _validate_normalized(context.run.run_id, partition, store, catalog.source())
    current = quality.profile(partition.resource_type, stored)
    baseline = quality.load_baseline(store.engine, partition.key)
    drifts = quality.compare_profiles(baseline, current, thresholds)
    if not result.critical_failed:  # a bad run must not become the next baseline
        quality.save_baseline(store.engine, partition.key, context.run.run_id, current)
    metadata: dict[str, Any] = {
        "baseline": "none (first run)" if baseline is None else "previous passing run",
        "drifted": len(drifts),
        "drifted_metrics": ", ".join(d.metric for d in drifts) or "none",
        "drift": dg.MetadataValue.json(
            [{"metric": d.metric, "before": d.before, "after": d.after} for d in drifts]
        ),
        "seconds": round(time.perf_counter() - started, 3),
        # each number on its own key so the check's history plots it over time
        **{f"profile/{k}": float(v) for k, v in current.items()},
    }
    return dg.AssetCheckResult(
        passed=not drifts, severity=dg.AssetCheckSeverity.WARN, metadata=metadata
    )


@dg.asset_check(
    asset=normalized_descriptors,
    description="Rows of the partition in descriptor_quarantine (raw and normalize stages): "
    "WARN when any, ERROR past the configured share of the partition. Never blocks.",
)
def quarantine_count(
    context: dg.AssetCheckExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
) -> dg.AssetCheckResult:
    partition = partition_of(context)
    rows = index_store.store().quarantine_rows(partition.key)
    total_rows = catalog.source().count(partition.resource_type, partition.id_range)
    summary = quality.summarize_quarantine(rows, total_rows)
    thresholds = quality.Thresholds.from_env()
    severity = (
        dg.AssetCheckSeverity.ERROR
        if summary.share > thresholds.max_quarantine_share
        else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(
        passed=summary.total == 0,
        severity=severity,
        metadata={
            "quarantined": summary.total,
            "quarantined_share": summary.share,
            "by_stage_rule": dg.MetadataValue.json(summary.by_stage_rule),
            "examples": "\n".join(summary.examples) or "none",
        },
    )


@dg.asset_check(
    asset=descriptor_index,
    description="GX index suite: every catalog id published, withdrawn or quarantined (counts "
    "reconcile), one document per resource, content hashes consistent, version current.",
)
def index_suite(
    context: dg.AssetCheckExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
) -> dg.AssetCheckResult:
    partition = partition_of(context)
    store = index_store.store()
    normalized = read_partition(store, normalized_table, partition)
    blocked = normalized.loc[normalized["blocked"].astype(bool), "resource_id"]
    quarantined = store.quarantine_rows(partition.key)["resource_id"]
    frame = quality.index_frame(
        read_partition(store, index_table, partition),
        catalog_ids(catalog.source(), partition),
        blocked,
        quarantined,
    )
    result = quality.validate(
        "index", partition.resource_type, frame, quality.Thresholds.from_env()
    )
    counts = frame["status"].value_counts().to_dict()
    return suite_check_result(
        context, partition, result, {f"ids_{k}": int(v) for k, v in counts.items()}
    )


asset_checks: list[dg.AssetChecksDefinition] = [
    raw_suite,
    normalized_suite,
    normalized_drift,
    quarantine_count,
    index_suite,
]


# ---------------------------------------------------------------- replay


def quarantined_partitions(store: IndexStore) -> list[DescriptorPartition]:
    """The partitions that hold at least one quarantined row, in key order."""
    keys = sorted(set(store.quarantine_rows()["partition_key"]))
    out = []
    for key in keys:
        id_range, _, resource_type = key.partition("|")
        out.append(DescriptorPartition(resource_type, IdRange.parse(id_range)))
    return out


@dg.op(
    description="Re-run raw -> normalized -> (critical suite) -> index for every partition "
    "named in descriptor_quarantine; rows that now pass leave quarantine and are published."
)
def replay_quarantined_partitions(
    context: dg.OpExecutionContext,
    catalog: CatalogResource,
    index_store: IndexStoreResource,
    settings: PipelineSettings,
) -> dg.Output[None]:
    store, source = index_store.store(), catalog.source()
    before = len(store.quarantine_rows())
    replayed, blocked = [], []
    for partition in quarantined_partitions(store):
        key = partition.key
        reports = [extract_raw(source, store, partition, settings.chunk_size)]
        reports.append(
            normalize_partition(
                store, partition, normalization_context(source), settings.chunk_size
            )
        )
        result, _ = _validate_normalized(context.run.run_id, partition, store, source)
        assets = [raw_descriptors.key, normalized_descriptors.key]
        if result.critical_failed:  # the same gate the blocking check applies in asset runs
            blocked.append(key)
            context.log.warning(f"{key}: critical expectations failed, not published")
        else:
            reports.append(publish_partition(store, partition, settings.chunk_size))
            assets.append(descriptor_index.key)
        for asset_key, report in zip(assets, reports, strict=True):
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=asset_key,
                    partition=key,
                    metadata={**report.metadata(), "replay": True},
                )
            )
        replayed.append(key)
    after = len(store.quarantine_rows())
    return dg.Output(
        None,
        metadata={
            "partitions_replayed": len(replayed),
            "partitions_blocked": ", ".join(blocked) or "none",
            "quarantined_before": before,
            "quarantined_after": after,
            "rows_released": before - after,
        },
    )


@dg.job(
    description="Replay quarantined rows after a fix of a rule or of the catalog data: "
    "re-runs every partition that has rows in descriptor_quarantine."
)
def replay_quarantine() -> None:
    replay_quarantined_partitions()


jobs: list[dg.JobDefinition] = [replay_quarantine]
