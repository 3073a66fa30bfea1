"""The GX Core context and one suite per layer and resource type, and running them.

Great Expectations is imported lazily (about 2 s) when a check first runs; the context and
the suites are built once per process.
"""

from __future__ import annotations

import hashlib
import time
from functools import cache
from typing import Any

import pandas as pd

from descriptor_pipeline.quality.frames import (
    INDEX_OK_STATUSES,
    NORMALIZED_FRAME_COLUMNS,
    RAW_FRAME_COLUMNS,
)
from descriptor_pipeline.quality.results import (
    DEFAULTS,
    MAX_EXAMPLES,
    ExpectationSummary,
    Layer,
    SuiteResult,
    Thresholds,
    short,
)
from descriptor_pipeline.rules import (
    DESCRIPTION_MAX_CHARS,
    NAME_MAX_CHARS,
    NORMALIZATION_VERSION,
)
from descriptor_pipeline.values import plain


@cache
def _gx() -> tuple[Any, Any]:
    """The ephemeral GX context and its one whole-dataframe batch definition (once per process)."""
    import great_expectations as gx  # heavy import (~2 s): only when a check first runs

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    asset = context.data_sources.add_pandas("descriptor_frames").add_dataframe_asset("partition")
    return context, asset.add_batch_definition_whole_dataframe("whole_partition")


def _expectations(
    layer: Layer, resource_type: str, t: Thresholds, distributions: bool = True
) -> list[Any]:
    import great_expectations.expectations as gxe

    crit, warn = "critical", "warning"
    if layer == "raw":
        return [
            gxe.ExpectTableColumnsToMatchSet(
                column_set=list(RAW_FRAME_COLUMNS), exact_match=True, severity=crit
            ),
            gxe.ExpectColumnValuesToNotBeNull(column="resource_id", severity=crit),
            gxe.ExpectColumnValuesToBeUnique(column="resource_id", severity=crit),
            gxe.ExpectColumnValuesToNotBeNull(column="raw_hash", severity=crit),
            gxe.ExpectColumnValuesToNotBeNull(column="links", severity=crit),
            gxe.ExpectColumnValuesToBeInSet(column="json_ok", value_set=[True], severity=crit),
            gxe.ExpectColumnValuesToBeInSet(
                column="updated_at_in_future", value_set=[False], severity=warn
            ),
        ]
    if layer == "normalized":
        return [
            gxe.ExpectTableColumnsToMatchSet(
                column_set=list(NORMALIZED_FRAME_COLUMNS), exact_match=True, severity=crit
            ),
            gxe.ExpectColumnValuesToBeUnique(column="resource_id", severity=crit),
            gxe.ExpectColumnValuesToBeBetween(column="schema_errors", max_value=0, severity=crit),
            gxe.ExpectColumnValuesToNotBeNull(column="name", severity=crit),
            gxe.ExpectColumnValuesToBeBetween(
                column="name_len", min_value=1, max_value=NAME_MAX_CHARS, severity=crit
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="description_len", max_value=DESCRIPTION_MAX_CHARS + 1, severity=crit
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="provenance_missing", max_value=0, severity=crit
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="control_chars", value_set=[False], severity=crit
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="normalization_version", value_set=[NORMALIZATION_VERSION], severity=crit
            ),
        ] + (_distributions(t) if distributions else [])
    return [
        gxe.ExpectColumnValuesToBeInSet(
            column="status", value_set=list(INDEX_OK_STATUSES), severity=crit
        ),
        gxe.ExpectColumnValuesToBeUnique(column="document_key", severity=crit),
        # a document written with an empty name part can never be found by its name
        gxe.ExpectColumnValueLengthsToBeBetween(column="search_name", min_value=1, severity=crit),
        gxe.ExpectColumnValuesToBeInSet(
            column="normalization_version", value_set=[NORMALIZATION_VERSION], severity=crit
        ),
    ]


def _distributions(t: Thresholds) -> list[Any]:
    """Expectations about a partition's shape: noise on a handful of changed rows, so they run
    only when a run validates at least `drift_min_rows` rows."""
    import great_expectations.expectations as gxe

    warn = "warning"
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column="genres_outside_tree",
            max_value=0,
            mostly=t.genres_in_tree_mostly,
            severity=warn,
        ),
        gxe.ExpectColumnMeanToBeBetween(
            column="vocab_share", min_value=t.min_vocab_share, severity=warn
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="genre_count", min_value=1, mostly=t.min_genre_coverage, severity=warn
        ),
    ]


@cache
def suite_for(
    layer: Layer,
    resource_type: str,
    thresholds: Thresholds = DEFAULTS,
    distributions: bool = True,
) -> Any:
    """The GX suite of one layer for one resource type, registered once per process."""
    import great_expectations as gx

    context, _ = _gx()
    digest = hashlib.sha256(repr(thresholds).encode()).hexdigest()[:8]
    kind = "" if distributions else ".rows"
    suite = context.suites.add(gx.ExpectationSuite(name=f"{layer}.{resource_type}{kind}.{digest}"))
    for expectation in _expectations(layer, resource_type, thresholds, distributions):
        suite.add_expectation(expectation)
    return suite


def validate(
    layer: Layer,
    resource_type: str,
    frame: pd.DataFrame,
    thresholds: Thresholds = DEFAULTS,
) -> SuiteResult:
    """Run one layer's suite over a partition frame (see the `*_frame` builders).

    First with GX's BASIC result format: counts only, ~25x cheaper than SUMMARY, which looks up
    the id and name of every unexpected row (also of the rows a passing `mostly` expectation
    tolerates). Only a suite that did not pass is validated again with SUMMARY, for the failing
    examples and the Data Docs page.
    """
    started = time.perf_counter()
    distributions = len(frame) >= thresholds.drift_min_rows
    suite = suite_for(layer, resource_type, thresholds, distributions)
    _, batch_definition = _gx()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite, result_format={"result_format": "BASIC", "partial_unexpected_count": 0}
    )
    if not result.success:
        result = batch.validate(
            suite,
            result_format={
                "result_format": "SUMMARY",
                "partial_unexpected_count": MAX_EXAMPLES,
                # the name makes an example readable when the failing column is a derived fact
                "unexpected_index_column_names": ["resource_id", "name"]
                if "name" in frame.columns
                else ["resource_id"],
            },
        )
    summaries = [_summarize(r) for r in result.results]
    return SuiteResult(
        suite.name, len(frame), summaries, time.perf_counter() - started, gx_result=result
    )


def _summarize(r: Any) -> ExpectationSummary:
    config = r.expectation_config
    outcome = r.result or {}
    severity = getattr(config.severity, "value", str(config.severity))
    if r.exception_info and r.exception_info.get("raised_exception"):
        message = str(r.exception_info.get("exception_message"))[:200]
        return ExpectationSummary(
            config.type, config.kwargs.get("column"), severity, False, message
        )
    if "unexpected_count" in outcome:
        observed = f"{outcome['unexpected_count']} unexpected of {outcome.get('element_count')}"
    else:
        observed = str(plain(outcome.get("observed_value")))
    examples: list[str] = []
    column = config.kwargs.get("column")
    if r.success:  # a passing `mostly` expectation still lists unexpected rows: not news
        outcome = {}
    for item in outcome.get("partial_unexpected_index_list") or []:
        if isinstance(item, dict):
            value = plain(item.get(column)) if column else None
            name = f" {short(item['name'], 40)!r}" if item.get("name") is not None else ""
            examples.append(f"id {plain(item.get('resource_id'))}{name}: {short(value)}")
    if not examples:
        examples = [short(plain(v)) for v in outcome.get("partial_unexpected_list") or []]
    return ExpectationSummary(
        config.type, column, severity, bool(r.success), observed, tuple(examples[:MAX_EXAMPLES])
    )
