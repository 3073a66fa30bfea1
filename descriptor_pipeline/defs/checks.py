"""Asset checks, declared on the assets (`check_specs`) and evaluated inside their steps.

Each stage hands the rows it writes to a `quality.frames.LayerValidator` while they are still in
memory; the asset then runs its layer's GX suite once over those facts and yields the check
results with its materialization. No check re-reads a partition from a stage table, and no
check is a step of its own (a step costs a process under the multiprocess executor and a
Great Expectations import each). `raw_suite` and `normalized_suite` are blocking: a failed
critical expectation (severity ERROR) fails the asset's step, so the assets downstream of it
do not run for that partition in that run; warnings (WARN) never block.

Data Docs pages are rendered when a suite does not pass (or always, per the `quality`
resource): rendering costs more than validating. The link is an http:// URL when the resource
has a `data_docs_base_url` (a browser refuses file:// links from the UI's page).

No `from __future__ import annotations` here: Dagster reads the context annotation at runtime.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.defs.resources import QualitySettings
from descriptor_pipeline.id_ranges import DescriptorPartition
from descriptor_pipeline.index_store import IndexStore
from descriptor_pipeline.quality.drift import compare_profiles
from descriptor_pipeline.quality.frames import LayerValidator, index_frame
from descriptor_pipeline.quality.reports import render_data_docs, summarize_quarantine
from descriptor_pipeline.quality.results import Layer, SuiteResult, Thresholds
from descriptor_pipeline.quality.suites import validate
from descriptor_pipeline.stages import StageReport
from descriptor_pipeline.tables import normalized_descriptors as normalized_table
from descriptor_pipeline.tables import raw_descriptors as raw_table

RAW = dg.AssetKey("raw_descriptors")
NORMALIZED = dg.AssetKey("normalized_descriptors")
INDEX = dg.AssetKey("descriptor_index")
ID_PAGE = 50_000  # ids per read when reconciling a partition's ids (id-sized columns only)

raw_checks = [
    dg.AssetCheckSpec(
        "raw_suite",
        asset=RAW,
        blocking=True,
        description="GX raw suite over the rows this run wrote: required columns, parseable "
        "JSON objects, unique ids (critical); updated_at not in the future (warning).",
    )
]
normalized_checks = [
    dg.AssetCheckSpec(
        "normalized_suite",
        asset=NORMALIZED,
        blocking=True,
        description="GX normalized suite over the rows this run wrote: schema, names, text "
        "lengths, provenance, control chars, normalization version (critical: blocks "
        "publishing); genre vocabulary and coverage (warning).",
    ),
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
        description="Rows of the partition in descriptor_quarantine (raw and normalize stages): "
        "WARN when any, ERROR past the configured share of the partition. Never blocks.",
    ),
]
index_checks = [
    dg.AssetCheckSpec(
        "index_suite",
        asset=INDEX,
        description="GX index suite: every catalog id published, withdrawn or quarantined "
        "(counts reconcile), one document per resource, version current; documents written "
        "by this run searchable by name.",
    )
]


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


def suite_check_result(
    check_name: str,
    asset_key: dg.AssetKey,
    run_id: str,
    label: str,
    result: SuiteResult,
    quality: QualitySettings,
    extra: dict[str, Any] | None = None,
) -> dg.AssetCheckResult:
    """A suite's outcome as Dagster sees it: ERROR if a critical expectation failed, else WARN."""
    metadata: dict[str, Any] = {
        "partitions": label,
        "summary": _summary_table(result),
        "expectations": len(result.expectations),
        "passed": result.passed,
        "failed": result.failed,
        "failed_expectations": ", ".join(result.failed_names()) or "none",
        "rows_validated": result.rows,
        "validation_seconds": round(result.seconds, 3),
        **(extra or {}),
    }
    mode = quality.data_docs
    if mode == "always" or (mode == "on_failure" and not result.success):
        root = quality.docs_root()
        page = render_data_docs(result, run_id, label, root, quality.data_docs_keep_days)
        metadata["data_docs"] = dg.MetadataValue.path(str(page))
        metadata["data_docs_url"] = dg.MetadataValue.url(quality.docs_url(page))
    severity = dg.AssetCheckSeverity.ERROR if result.critical_failed else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=result.success,
        severity=severity,
        metadata=metadata,
    )


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
    if layer == "raw":
        table, column = raw_table, "raw_hash"
        for partition in partitions:
            store.record_fingerprint(partition, None)
    else:
        table, column = normalized_table, "input_hash"
    resource_type = partitions[0].resource_type
    store.invalidate(table, column, resource_type, frame["resource_id"].astype(int))


def _validate(
    layer: Layer,
    work: list[PartitionWork],
    frame_of: Callable[[PartitionWork], pd.DataFrame],
    store: IndexStore | None,
    thresholds: Thresholds,
) -> SuiteResult:
    """Each resource type's frames with its own suite (a packed run may cover several types);
    rows a blocking suite rejected get their hash forgotten (`store` given)."""
    by_type: dict[str, SuiteResult] = {}
    for resource_type in dict.fromkeys(w.partition.resource_type for w in work):
        group = [w for w in work if w.partition.resource_type == resource_type]
        frames = [frame_of(w) for w in group]
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        result = validate(layer, resource_type, frame, thresholds)
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
    result = _validate("raw", work, _facts, store, quality.thresholds())
    return [suite_check_result("raw_suite", RAW, run_id, _label(work), result, quality)]


def normalized_results(
    run_id: str,
    work: list[PartitionWork],
    store: IndexStore,
    source: CatalogSource,
    quality: QualitySettings,
) -> list[dg.AssetCheckResult]:
    if _unchecked(work):
        return []
    thresholds = quality.thresholds()
    result = _validate("normalized", work, _facts, store, thresholds)
    label = _label(work)
    return [
        suite_check_result("normalized_suite", NORMALIZED, run_id, label, result, quality),
        _drift_result(run_id, work, store, result, thresholds),
        _quarantine_result(work, store, source, thresholds),
    ]


def _drift_result(
    run_id: str,
    work: list[PartitionWork],
    store: IndexStore,
    suite: SuiteResult,
    thresholds: Thresholds,
) -> dg.AssetCheckResult:
    """Compare each partition's just-normalized rows with its baseline; a whole-partition pass
    that met the critical suite becomes the next baseline (a partial one would bias it)."""
    drifted: list[dict[str, Any]] = []
    notes: list[str] = []
    profiled = 0
    updated = 0
    current: dict[str, float] = {}
    for w in work:
        assert w.validator is not None and w.validator.profile is not None
        key, rows = w.partition.key, w.validator.rows
        current = w.validator.profile.values()
        baseline = store.load_baseline(key)
        for d in compare_profiles(baseline, current, thresholds):
            drifted.append(
                {"partition": key, "metric": d.metric, "before": d.before, "after": d.after}
            )
        whole = w.report.scoped_ids is None and w.report.counts.unchanged == 0 and rows > 0
        if whole and not suite.critical_failed:
            store.save_baseline(key, run_id, current)
            updated += 1
        profiled += rows
        if rows == 0:
            note = "nothing normalized: the last result stands"
        elif baseline is None:
            note = "none (first run)"
        elif min(baseline.get("rows", 0), current["rows"]) < thresholds.drift_min_rows:
            note = f"too few rows to compare (< {thresholds.drift_min_rows})"
        else:
            note = "previous whole-partition profile that passed"
        notes.append(note if len(work) == 1 else f"{key}: {note}")
    metadata: dict[str, Any] = {
        "partitions": _label(work),
        "baseline": "; ".join(notes),
        "rows_profiled": profiled,
        "baselines_updated": updated,
        "drifted": len(drifted),
        "drifted_metrics": ", ".join(sorted({d["metric"] for d in drifted})) or "none",
        "drift": dg.MetadataValue.json(drifted),
    }
    if len(work) == 1:  # each number on its own key so the check's history plots it over time
        metadata.update({f"profile/{k}": float(v) for k, v in current.items()})
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
        passed=summary.total == 0,
        severity=severity,
        metadata={
            "partitions": _label(work),
            "quarantined": summary.total,
            "quarantined_share": summary.share,
            "by_stage_rule": dg.MetadataValue.json(summary.by_stage_rule),
            "examples": "\n".join(summary.examples) or "none",
        },
    )


def _reconciliation_frame(
    w: PartitionWork, store: IndexStore, source: CatalogSource, table_name: str
) -> pd.DataFrame:
    """Every id of the partition with its status (ids and keys only, never whole rows)."""
    partition = w.partition
    target = store.index_table(table_name)
    key_columns = ["resource_id", "document_key", "normalization_version"]
    keys = [
        record
        for _, records in store.iter_records(target, partition, ID_PAGE, columns=key_columns)
        for record in records
    ]
    blocked = [
        int(r["resource_id"])
        for _, records in store.iter_records(
            normalized_table, partition, ID_PAGE, columns=["resource_id", "blocked"]
        )
        for r in records
        if r["blocked"]
    ]
    return index_frame(
        pd.DataFrame(keys, columns=key_columns),
        source.ids(partition.resource_type, partition.id_range),
        blocked,
        store.quarantine_rows(partition.key)["resource_id"],
        w.validator.search_names if w.validator is not None else {},
    )


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
    frames = {w.partition: _reconciliation_frame(w, store, source, table_name) for w in work}
    result = _validate("index", work, lambda w: frames[w.partition], None, quality.thresholds())
    frame = pd.concat(frames.values(), ignore_index=True)
    counts = frame["status"].value_counts().to_dict()
    extra = {f"ids_{k}": int(v) for k, v in counts.items()}
    return [suite_check_result("index_suite", INDEX, run_id, _label(work), result, quality, extra)]
