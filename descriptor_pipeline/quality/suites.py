"""The GX Core context and one suite per layer and resource type, and running them.

Great Expectations is imported (`gx_import`, about 1.3 s) when a check first runs; the context and
the suites are built once per process.
"""

from __future__ import annotations

import hashlib
import time
from functools import cache
from typing import Any, Literal

import pandas as pd

from descriptor_pipeline.gc_tuning import freeze_once
from descriptor_pipeline.quality.frames import (
    INDEX_OK_STATUSES,
    RAW_FRAME_COLUMNS,
    TREE_FIELDS,
    normalized_columns,
)
from descriptor_pipeline.quality.gx_import import import_great_expectations
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
    CONTROL_CHARS,
    DESCRIPTION_MAX_CHARS,
    NAME_MAX_CHARS,
    NORMALIZATION_VERSION,
)
from descriptor_pipeline.schema import SOURCE_COLUMNS, Source, fields_of
from descriptor_pipeline.values import plain

SuiteName = Literal["raw", "normalized", "values", "index"]  # values: normalized, one per line


@cache
def _gx() -> tuple[Any, Any]:
    """The ephemeral GX context and its one whole-dataframe batch definition (once per process)."""
    gx = import_great_expectations()  # heavy (~1.3 s): only when a check first runs

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    asset = context.data_sources.add_pandas("descriptor_frames").add_dataframe_asset("partition")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole_partition")
    freeze_once("great_expectations")  # its ~50 MiB of objects: not walked by later collections
    return context, batch_definition


# no control or zero-width character anywhere in a text value (JSON Schema `pattern`)
_NO_CONTROL = "^[^" + CONTROL_CHARS.pattern[1:-1] + "]*$"
_HEX_SHA256 = "^[0-9a-f]{64}$"
_JSON_OBJECT = r"^\s*(\{|null\s*$)"  # a JSON object, or JSON's null (PostgreSQL's JSONB)
_TYPES = {"text": ["str"], "text_list": ["list"], "int": ["int"]}  # GX type names, per kind
# what GX ignores when it judges two expectations alike (`ExpectationSuite.add_expectation`)
_NOT_IDENTITY = {"id", "rendered_content", "notes", "meta"}


def _raw(resource_type: str, t: Thresholds) -> list[Any]:
    import great_expectations.expectations as gxe

    crit, warn = "critical", "warning"
    return [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(RAW_FRAME_COLUMNS), exact_match=True, severity=crit
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="resource_id", severity=crit),
        gxe.ExpectColumnValuesToBeUnique(column="resource_id", severity=crit),
        gxe.ExpectColumnValuesToBeBetween(
            column="resource_id",
            min_value={"$PARAMETER": "id_min"},
            max_value={"$PARAMETER": "id_max"},
            severity=crit,
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="raw_hash", severity=crit),
        gxe.ExpectColumnValuesToMatchRegex(column="raw_hash", regex=_HEX_SHA256, severity=crit),
        gxe.ExpectColumnValuesToNotBeNull(column="links", severity=crit),
        # links and every source document: JSON, and an object (nulls are allowed)
        *(
            gxe.ExpectColumnValuesToBeJsonParseable(column=c, severity=crit)
            for c in ("links", *SOURCE_COLUMNS)
        ),
        *(
            gxe.ExpectColumnValuesToMatchRegex(column=c, regex=_JSON_OBJECT, severity=crit)
            for c in ("links", *SOURCE_COLUMNS)
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="source_updated_at", max_value={"$PARAMETER": "latest_update"}, severity=warn
        ),
    ]


def _normalized(resource_type: str, t: Thresholds, distributions: bool) -> list[Any]:
    import great_expectations.expectations as gxe

    crit, warn = "critical", "warning"
    specs = [s for s in fields_of(resource_type) if s.kind != "flag"]
    rows = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=normalized_columns(resource_type), exact_match=True, severity=crit
        ),
        gxe.ExpectColumnValuesToBeUnique(column="resource_id", severity=crit),
        gxe.ExpectColumnValuesToBeInSet(
            column="resource_type", value_set=[resource_type], severity=crit
        ),
        # each field of its kind: a text, a list of texts or an integer, as stored
        *(
            gxe.ExpectColumnValuesToBeInTypeList(
                column=s.name, type_list=_TYPES[s.kind], severity=crit
            )
            for s in specs
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="name", severity=crit),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="name", min_value=1, max_value=NAME_MAX_CHARS, severity=crit
        ),
        # 2000 characters and the ellipsis a cut adds
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="description", max_value=DESCRIPTION_MAX_CHARS + 1, severity=crit
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="normalization_version", value_set=[NORMALIZATION_VERSION], severity=crit
        ),
    ]
    if not distributions:
        return rows
    present = dict(t.min_present)
    return [
        *rows,
        gxe.ExpectColumnValuesToNotBeNull(
            column="genres", mostly=t.min_genre_coverage, severity=warn
        ),
        *(
            gxe.ExpectColumnValuesToNotBeNull(column=f, mostly=present[f], severity=warn)
            for f in sorted(present)
            if f in {s.name for s in specs}
        ),
    ]


def _values(t: Thresholds, distributions: bool) -> list[Any]:
    """Every field value, one per line: its source and its text (critical); the share of
    genre and tag values that map to a genre of the tree (warnings, distributions only)."""
    import great_expectations.expectations as gxe

    crit, warn = "critical", "warning"
    rows = [
        gxe.ExpectColumnValuesToNotBeNull(column="source", severity=crit),
        # a source the pipeline knows (a catalog's source profile may route one to any field)
        gxe.ExpectColumnValuesToBeInSet(
            column="source", value_set=sorted(s.value for s in Source), severity=crit
        ),
        gxe.ExpectColumnValuesToNotMatchRegex(
            column="value", regex=CONTROL_CHARS.pattern, severity=crit
        ),
    ]
    if not distributions:
        return rows
    return [
        *rows,
        gxe.ExpectColumnValuesToNotBeNull(
            column="in_tree",
            mostly=t.min_vocab_share,
            row_condition=f"field in {list(TREE_FIELDS)}",
            condition_parser="pandas",
            severity=warn,
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="in_tree",
            mostly=t.genres_in_tree_mostly,
            row_condition='field == "genres"',
            condition_parser="pandas",
            severity=warn,
        ),
    ]


def _index(resource_type: str) -> list[Any]:
    import great_expectations.expectations as gxe

    crit = "critical"
    return [
        gxe.ExpectColumnValuesToBeInSet(
            column="status", value_set=list(INDEX_OK_STATUSES), severity=crit
        ),
        # one row per catalog id, plus any published id the catalog no longer has
        gxe.ExpectTableRowCountToEqual(value={"$PARAMETER": "catalog_rows"}, severity=crit),
        gxe.ExpectColumnValuesToBeUnique(column="document_key", severity=crit),
        gxe.ExpectColumnValuesToMatchRegex(
            column="document_key", regex=f"^{resource_type}:[0-9]+$", severity=crit
        ),
        # a document written with an empty name part can never be found by its name
        gxe.ExpectColumnValueLengthsToBeBetween(column="search_name", min_value=1, severity=crit),
        gxe.ExpectColumnValuesToBeInSet(
            column="normalization_version", value_set=[NORMALIZATION_VERSION], severity=crit
        ),
    ]


def _expectations(
    layer: SuiteName, resource_type: str, t: Thresholds, distributions: bool = True
) -> list[Any]:
    if layer == "raw":
        return _raw(resource_type, t)
    if layer == "normalized":
        return _normalized(resource_type, t, distributions)
    if layer == "values":
        return _values(t, distributions)
    return _index(resource_type)


@cache
def suite_for(
    layer: SuiteName,
    resource_type: str,
    thresholds: Thresholds = DEFAULTS,
    distributions: bool = True,
) -> Any:
    """The GX suite of one layer for one resource type, registered once per process.

    Built whole, then registered: `add_expectation` on a registered suite saves it each time
    and compares the newcomer with every expectation before it, which cost a launched run
    about 0.15 s more for its first suites. The constructor keeps duplicates that
    `add_expectation` skipped (thresholds can make two warnings alike), so `_distinct` drops
    them first."""
    context, _ = _gx()
    gx = import_great_expectations()
    digest = hashlib.sha256(repr(thresholds).encode()).hexdigest()[:8]
    kind = "" if distributions else ".rows"
    expectations = _distinct(_expectations(layer, resource_type, thresholds, distributions))
    suite = context.suites.add(
        gx.ExpectationSuite(
            name=f"{layer}.{resource_type}{kind}.{digest}", expectations=expectations
        )
    )
    if len(suite.expectations) != len(expectations):  # GX logs and drops one it cannot load
        raise RuntimeError(
            f"GX registered {len(suite.expectations)} of the {len(expectations)} expectations "
            f"of suite {suite.name}"
        )
    return suite


def _distinct(expectations: list[Any]) -> list[Any]:
    """Each expectation once, alike as GX's `add_expectation` judges it (type and arguments)."""
    seen: set[str] = set()
    out: list[Any] = []
    for expectation in expectations:
        key = repr((expectation.expectation_type, expectation.dict(exclude=_NOT_IDENTITY)))
        if key not in seen:
            seen.add(key)
            out.append(expectation)
    return out


def registered_suite(name: str) -> Any:
    """A suite this process registered (`suite_for`), by its name: for its Data Docs page."""
    context, _ = _gx()
    return context.suites.get(name)


def _run(suite: Any, frame: pd.DataFrame, parameters: dict[str, Any]) -> Any:
    """BASIC first: counts only, ~25x cheaper than SUMMARY, which looks up the id of every
    unexpected row (also of the rows a passing `mostly` expectation tolerates). Only a suite
    that did not pass runs again with SUMMARY, for the failing examples and the page."""
    _, batch_definition = _gx()
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite,
        expectation_parameters=parameters,
        result_format={"result_format": "BASIC", "partial_unexpected_count": 0},
    )
    if not result.success:
        result = batch.validate(
            suite,
            expectation_parameters=parameters,
            result_format={
                "result_format": "SUMMARY",
                "partial_unexpected_count": MAX_EXAMPLES,
                # what makes an example readable: the id and the resource's name, or for a
                # value frame's line the field and its value
                "unexpected_index_column_names": [
                    c for c in ("resource_id", "name", "field", "value") if c in frame.columns
                ],
            },
        )
    return result


def validate(
    layer: Layer,
    resource_type: str,
    frame: pd.DataFrame,
    thresholds: Thresholds = DEFAULTS,
    parameters: dict[str, Any] | None = None,
    values: pd.DataFrame | None = None,
) -> SuiteResult:
    """Run one layer's suite over a partition frame (see `frames`), with the values that
    differ per partition (`parameters`: id range, catalog rows, latest allowed update).

    The normalized layer also validates `values` (every field value, one per line) with
    their own suite; both land in one result and one Data Docs page.
    """
    started = time.perf_counter()
    distributions = len(frame) >= thresholds.drift_min_rows
    suite = suite_for(layer, resource_type, thresholds, distributions)
    result = _run(suite, frame, parameters or {})
    name = suite.name
    if values is not None:
        extra = _run(suite_for("values", resource_type, thresholds, distributions), values, {})
        result.results.extend(extra.results)
        result.success = bool(result.success and extra.success)
    summaries = [_summarize(r) for r in result.results]
    return SuiteResult(name, len(frame), summaries, time.perf_counter() - started, gx_result=result)


def _summarize(r: Any) -> ExpectationSummary:
    config = r.expectation_config
    outcome = r.result or {}
    severity = getattr(config.severity, "value", str(config.severity))
    column = config.kwargs.get("column")
    condition = config.kwargs.get("row_condition")
    if condition:  # say where the expectation applies
        text = condition.get("pass_through_filter") if isinstance(condition, dict) else condition
        column = f"{column} where {str(text).replace('`', '')}"
    if r.exception_info and r.exception_info.get("raised_exception"):
        message = str(r.exception_info.get("exception_message"))[:200]
        return ExpectationSummary(config.type, column, severity, False, message)
    if "unexpected_count" in outcome:
        observed = f"{outcome['unexpected_count']} unexpected of {outcome.get('element_count')}"
    else:
        observed = str(plain(outcome.get("observed_value")))
    examples: list[str] = []
    if r.success:  # a passing `mostly` expectation still lists unexpected rows: not news
        outcome = {}
    source = config.kwargs.get("column")
    for item in outcome.get("partial_unexpected_index_list") or []:
        if isinstance(item, dict):
            value = item.get(source) if source else None
            value = value.isoformat() if hasattr(value, "isoformat") else value  # timestamps
            context = "".join(
                f" {item['field']}" if key == "field" else f" {short(item[key], 40)!r}"
                for key in ("field", "name", "value")
                if key != source and item.get(key) is not None
            )
            examples.append(f"id {plain(item.get('resource_id'))}{context}: {short(plain(value))}")
    if not examples:
        examples = [short(plain(v)) for v in outcome.get("partial_unexpected_list") or []]
    return ExpectationSummary(
        config.type, column, severity, bool(r.success), observed, tuple(examples[:MAX_EXAMPLES])
    )
