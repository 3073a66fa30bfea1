"""Asset checks, declared on the assets (`check_specs`) and evaluated inside their steps.

Each stage hands the rows it writes to a `quality.frames.LayerValidator` while they are still in
memory; the asset then runs its layer's GX suite once over those columns and yields the check
results with its materialization. No check re-reads a partition from a stage table, and no
check is a step of its own (a step costs a process and a Great Expectations import each).
Which checks block is declared once, in `quality.results.SUITE_CHECKS`: a layer's critical
expectations are one check (ERROR; `raw_suite` and `normalized_suite` block the assets
downstream for that partition), its warnings another (WARN, never blocking).

Data Docs pages are rendered when a suite does not pass (or always, per the `quality`
resource); the link is http:// under the resource's `data_docs_base_url` when set.

No `from __future__ import annotations` here: Dagster reads the context annotation at runtime.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.defs.resources import QualitySettings
from descriptor_pipeline.id_ranges import DescriptorPartition
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.partition_lock import under_all
from descriptor_pipeline.quality.drift import baseline_note, compare_profiles, plot_metrics
from descriptor_pipeline.quality.frames import (
    FUTURE_SKEW,
    INDEX_KEY_COLUMNS,
    LayerValidator,
    concat_frames,
    index_frame,
)
from descriptor_pipeline.quality.reports import render_data_docs, summarize_quarantine
from descriptor_pipeline.quality.results import SUITE_CHECKS, Layer, SuiteResult, Thresholds
from descriptor_pipeline.quality.suites import validate
from descriptor_pipeline.stages import StageReport
from descriptor_pipeline.tables import normalized_descriptors as normalized_table
from descriptor_pipeline.tables import raw_descriptors as raw_table

RAW = dg.AssetKey("raw_descriptors")
NORMALIZED = dg.AssetKey("normalized_descriptors")
INDEX = dg.AssetKey("descriptor_index")
ID_PAGE = 50_000  # ids per read when reconciling a partition's ids (id-sized columns only)

_ASSET_OF: dict[Layer, dg.AssetKey] = {"raw": RAW, "normalized": NORMALIZED, "index": INDEX}


def _suite_specs(layer: Layer) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            c.name, asset=_ASSET_OF[layer], blocking=c.blocking, description=c.description
        )
        for c in SUITE_CHECKS
        if c.layer == layer
    ]


raw_checks = _suite_specs("raw")
normalized_checks = [
    *_suite_specs("normalized"),
    dg.AssetCheckSpec(
        "normalized_drift",
        asset=NORMALIZED,
        description="The profile of the rows this run normalized (null rates and source shares "
        "per field, distinct tags, text-length quantiles) against the last whole-partition "
        "profile that passed the critical suite.",
    ),
    dg.AssetCheckSpec(
        "quarantine_count",
        asset=NORMALIZED,
        description="Rows of the partition in descriptor_quarantine (raw and normalize stages: "
        "not published) and resources published without a bad field (stage field): WARN when "
        "any, ERROR past the configured share of unpublished rows. Never blocks.",
    ),
]
index_checks = _suite_specs("index")


def _summary_table(result: SuiteResult) -> dg.MetadataValue:
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


@dataclass
class PartitionWork:
    """What one partition's stage did in this run, and what its validator saw."""

    partition: DescriptorPartition
    validator: LayerValidator | None  # None: the run did not select the checks
    report: StageReport


def _unchecked(work: list[PartitionWork]) -> bool:
    return any(w.validator is None for w in work)


def _label(work: list[PartitionWork]) -> str:
    keys = [w.partition.key for w in work]
    return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"


def suite_check_results(
    layer: Layer,
    run_id: str,
    label: str,
    result: SuiteResult,
    quality: QualitySettings,
    extra: dict[str, Any] | None = None,
) -> list[dg.AssetCheckResult]:
    """A layer's validation as its checks (`SUITE_CHECKS`): the critical expectations ERROR,
    the warnings WARN; both link the one Data Docs page of the validation."""
    docs: dict[str, Any] = {}
    mode = quality.data_docs
    if mode == "always" or (mode == "on_failure" and not result.success):
        root = quality.docs_root()
        page = render_data_docs(
            result, run_id, label, root, quality.data_docs_keep_days, _ASSET_OF[layer].path[-1]
        )
        docs["data_docs"] = dg.MetadataValue.path(str(page))
        docs["data_docs_url"] = dg.MetadataValue.url(quality.docs_url(page))
    checks = []
    for check in (c for c in SUITE_CHECKS if c.layer == layer):
        part = result.of_severity(check.severity)
        metadata: dict[str, Any] = {
            "partitions": label,
            "summary": _summary_table(part),
            "expectations": len(part.expectations),
            "passed": part.passed,
            "failed": part.failed,
            "failed_expectations": ", ".join(part.failed_names()) or "none",
            "rows_validated": result.rows,
            "validation_seconds": round(result.seconds, 3),
            **(extra or {}),
            **docs,
        }
        critical = check.severity == "critical"
        checks.append(
            dg.AssetCheckResult(
                check_name=check.name,
                asset_key=_ASSET_OF[layer],
                passed=part.success,
                severity=dg.AssetCheckSeverity.ERROR if critical else dg.AssetCheckSeverity.WARN,
                metadata=metadata,
            )
        )
    return checks


def _forget_if_blocked(
    result: SuiteResult,
    frame: pd.DataFrame,
    store: IndexStore,
    layer: str,
    partitions: list[DescriptorPartition],
) -> None:
    """Rows a blocking suite rejected keep their hash forgotten (and raw ranges their
    fingerprint): the next run redoes and re-validates them instead of skipping them."""
    if not result.critical_failed:
        return
    stage, table, column = ("raw", raw_table, "raw_hash")
    if layer != "raw":
        stage, table, column = ("normalize", normalized_table, "input_hash")

    def forget() -> None:
        for partition in partitions if layer == "raw" else []:
            store.record_fingerprint(partition, None)
        ids = frame["resource_id"].astype(int)
        store.invalidate(table, column, partitions[0].resource_type, ids)

    under_all(store.engine, partitions, stage, store.lock_wait, forget)


def _parameters(layer: Layer, group: list[PartitionWork], catalog_rows: int) -> dict[str, Any]:
    """What differs per partition: the id range, the latest allowed update, the catalog's rows."""
    if layer == "raw":
        return {
            "id_min": min(w.partition.id_range.first for w in group),
            "id_max": max(w.partition.id_range.last for w in group),
            "latest_update": datetime.now(UTC) + FUTURE_SKEW,
        }
    return {"catalog_rows": catalog_rows} if layer == "index" else {}


def _validate(
    layer: Layer,
    work: list[PartitionWork],
    frame_of: Callable[[PartitionWork], pd.DataFrame],
    store: IndexStore | None,
    quality: QualitySettings,
    catalog_rows: Callable[[PartitionWork], int] = lambda w: 0,
) -> SuiteResult:
    """Each resource type's frames with its own suite and thresholds (a packed run may cover
    several types); rows a blocking suite rejected get their hash forgotten (`store` given)."""
    by_type: dict[str, SuiteResult] = {}
    for resource_type in dict.fromkeys(w.partition.resource_type for w in work):
        group = [w for w in work if w.partition.resource_type == resource_type]
        frame = concat_frames([frame_of(w) for w in group])
        values = None
        if layer == "normalized":
            values = concat_frames([w.validator.values() for w in group if w.validator is not None])
        parameters = _parameters(layer, group, sum(catalog_rows(w) for w in group))
        thresholds = quality.thresholds(resource_type)
        result = validate(layer, resource_type, frame, thresholds, parameters, values)
        if store is not None:
            _forget_if_blocked(result, frame, store, layer, [w.partition for w in group])
        by_type[resource_type] = result
    return SuiteResult.merged(by_type)


def _facts(w: PartitionWork) -> pd.DataFrame:
    assert w.validator is not None
    return w.validator.frame()


def raw_results(
    run_id: str, work: list[PartitionWork], store: IndexStore, quality: QualitySettings
) -> list[dg.AssetCheckResult]:
    if _unchecked(work):
        return []
    result = _validate("raw", work, _facts, store, quality)
    return suite_check_results("raw", run_id, _label(work), result, quality)


def normalized_results(
    run_id: str,
    work: list[PartitionWork],
    store: IndexStore,
    source: CatalogSource,
    quality: QualitySettings,
) -> list[dg.AssetCheckResult]:
    if _unchecked(work):
        return []
    result = _validate("normalized", work, _facts, store, quality)
    return [
        *suite_check_results("normalized", run_id, _label(work), result, quality),
        _drift_result(run_id, work, store, result, quality),
        _quarantine_result(work, store, source, quality.thresholds()),
    ]


def _drift_result(
    run_id: str,
    work: list[PartitionWork],
    store: IndexStore,
    suite: SuiteResult,
    quality: QualitySettings,
) -> dg.AssetCheckResult:
    """Compare each partition's just-normalized rows with its baseline; a whole-partition pass
    that met the critical suite becomes the next baseline (a partial one would bias it).

    Numbers for the check's plots: `<resource_type>/<metric>`, a handful per type, so the
    UI draws one line per metric and type over time; the full profile is the `profile` entry.
    """
    drifted: list[dict[str, Any]] = []
    notes: list[str] = []
    profiled = updated = 0
    pairs: dict[str, list[tuple[dict[str, float] | None, dict[str, float]]]] = {}
    profiles: dict[str, dict[str, float]] = {}
    for w in work:
        assert w.validator is not None
        current = w.validator.profile()
        assert current is not None
        key, rows = w.partition.key, w.validator.rows
        thresholds = quality.thresholds(w.partition.resource_type)
        profiles[key] = current
        baseline = store.load_baseline(key)
        pairs.setdefault(w.partition.resource_type, []).append((baseline, current))
        for d in compare_profiles(baseline, current, thresholds):
            drifted.append(
                {"partition": key, "metric": d.metric, "before": d.before, "after": d.after}
            )
        whole = w.report.scoped_ids is None and w.report.counts.unchanged == 0 and rows > 0
        if whole and not suite.critical_failed:
            store.save_baseline(key, run_id, current)
            updated += 1
        profiled += rows
        note = baseline_note(baseline, current, thresholds)
        notes.append(note if len(work) == 1 else f"{key}: {note}")
    metadata: dict[str, Any] = {
        "partitions": _label(work),
        "baseline": "; ".join(notes),
        "rows_profiled": profiled,
        "baselines_updated": updated,
        "drifted": len(drifted),
        "drifted_metrics": ", ".join(sorted({d["metric"] for d in drifted})) or "none",
        "drift": dg.MetadataValue.json(drifted),
        "profile": dg.MetadataValue.json(profiles if len(work) > 1 else current),
    }
    for resource_type, pair in pairs.items():
        for metric, value in plot_metrics(pair).items():
            metadata[f"{resource_type}/{metric}"] = dg.MetadataValue.float(value)
    return dg.AssetCheckResult(
        check_name="normalized_drift",
        asset_key=NORMALIZED,
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def _quarantine_result(
    work: list[PartitionWork],
    store: IndexStore,
    source: CatalogSource,
    thresholds: Thresholds,
) -> dg.AssetCheckResult:
    rows = pd.concat([store.quarantine_rows(w.partition.key) for w in work], ignore_index=True)
    total = sum(source.count(w.partition.resource_type, w.partition.id_range) for w in work)
    summary = summarize_quarantine(rows, total)
    severity = (
        dg.AssetCheckSeverity.ERROR
        if summary.share > thresholds.max_quarantine_share
        else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(
        check_name="quarantine_count",
        asset_key=NORMALIZED,
        passed=summary.total == 0 and summary.fields_dropped == 0,
        severity=severity,
        metadata={
            "partitions": _label(work),
            "quarantined": summary.total,
            "fields_dropped": summary.fields_dropped,
            "quarantined_share": summary.share,
            "by_stage_rule": dg.MetadataValue.json(summary.by_stage_rule),
            "examples": "\n".join(summary.examples) or "none",
        },
    )


def _reconciliation_frame(
    w: PartitionWork, store: IndexStore, source: CatalogSource, table_name: str
) -> tuple[pd.DataFrame, int]:
    """Each id's status in the partition (ids and keys, no whole rows), and the catalog's count."""
    partition = w.partition
    target = store.index_table(table_name)
    key_columns = list(INDEX_KEY_COLUMNS)  # what index_frame reads of the published rows
    keys = [
        record
        for _, records in store.iter_records(target, partition, ID_PAGE, columns=key_columns)
        for record in records
    ]
    catalog_ids = list(source.ids(partition.resource_type, partition.id_range))
    frame = index_frame(
        pd.DataFrame(keys, columns=key_columns),
        catalog_ids,
        store.blocked_ids(partition),
        store.quarantine_rows(partition.key)["resource_id"],
        w.validator.search_names if w.validator is not None else {},
    )
    return frame, len(catalog_ids)


def index_results(
    run_id: str,
    work: list[PartitionWork],
    store: IndexStore,
    source: CatalogSource,
    table_name: str,
    quality: QualitySettings,
) -> list[dg.AssetCheckResult]:
    """Reconcile every id of the partitions and validate the documents this run wrote."""
    if _unchecked(work):
        return []
    reconciled = {w.partition: _reconciliation_frame(w, store, source, table_name) for w in work}
    frames = {p: frame for p, (frame, _) in reconciled.items()}
    in_catalog = {p: count for p, (_, count) in reconciled.items()}
    result = _validate(
        "index",
        work,
        lambda w: frames[w.partition],
        None,
        quality,
        catalog_rows=lambda w: in_catalog[w.partition],
    )
    frame = pd.concat(frames.values(), ignore_index=True)
    counts = frame["status"].value_counts().to_dict()
    extra = {f"ids_{k}": int(v) for k, v in counts.items()}
    return suite_check_results("index", run_id, _label(work), result, quality, extra)
