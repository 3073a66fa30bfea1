"""Data quality: GX Core suites per layer and resource type, drift profiles, Data Docs.

Row-level problems (malformed JSON, wrong types, oversized or missing names) are caught by the
stages' rules and quarantined row by row. These suites guard what the rules cannot see: invariants
of the stored tables (a row that bypassed or predates a rule) and distributions over a whole
partition (vocabulary share, genre coverage, a source that stopped sending a field).

Pure of Dagster: `defs/checks.py` reads a partition's rows and calls these functions; a CLI or a
benchmark can call them the same way. The GX context and the suites are built once per process.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Literal

import orjson
import pandas as pd

from descriptor_pipeline.normalization import (
    CONTROL_CHARS,
    DESCRIPTION_MAX_CHARS,
    NAME_MAX_CHARS,
    NORMALIZATION_VERSION,
    GenreVocabulary,
)
from descriptor_pipeline.schema import SOURCE_COLUMNS, FieldSpec, fields_of
from descriptor_pipeline.values import is_missing, json_value, plain

Layer = Literal["raw", "normalized", "index"]
LAYERS: tuple[Layer, ...] = ("raw", "normalized", "index")
MAX_EXAMPLES = 5
_FUTURE_SKEW = timedelta(minutes=5)  # clock skew between the catalog's writers and us


# ---------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Thresholds:
    """Every tunable number of the suites and of drift, in one place.

    Defaults come from the demo catalog (about 10% of resources carry a tree genre, and 92-100%
    of a row's genre/tag values are tree genres). Override with the JSON object in
    `DESCRIPTOR_QUALITY_THRESHOLDS` (read when a check runs, never at import).
    """

    min_vocab_share: float = 0.8  # mean share of a row's genre+tag values that are tree genres
    min_genre_coverage: float = 0.03  # share of rows with at least one tree genre
    genres_in_tree_mostly: float = 0.99  # genres that are no longer in the tree (tree edited)
    max_quarantine_share: float = 0.05  # above this the quarantine check is an ERROR, else WARN
    drift_min_rows: int = 20  # smaller partitions are too noisy to compare rates
    drift_max_rate_change: float = 0.10  # absolute change of a null rate or source share
    drift_max_relative_change: float = 0.5  # relative change of counts and length quantiles
    drift_min_absolute_change: float = 5.0  # ...and at least this much (chars, distinct tags)

    @classmethod
    def from_env(cls) -> Thresholds:
        text = os.environ.get("DESCRIPTOR_QUALITY_THRESHOLDS", "").strip()
        if not text:
            return cls()
        values = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown quality thresholds: {sorted(unknown)}")
        return cls(**values)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class ExpectationSummary:
    """One expectation's outcome, small enough for check metadata."""

    expectation: str
    column: str | None
    severity: str  # critical | warning | info
    success: bool
    observed: str  # observed value or "n unexpected of m"
    examples: tuple[str, ...] = ()


@dataclass
class SuiteResult:
    """A suite run over one partition: plain data, no GX objects leak past this point."""

    suite: str
    rows: int
    expectations: list[ExpectationSummary]
    seconds: float
    gx_result: Any = field(repr=False, default=None)  # for Data Docs rendering only

    @classmethod
    def merged(cls, by_type: dict[str, SuiteResult]) -> SuiteResult:
        """One result for a run that covered several resource types (each validated with its
        own suite); expectations are labelled with their type, Data Docs show a failing one."""
        results = list(by_type.values())
        if len(results) == 1:
            return results[0]
        expectations = [
            replace(e, column=f"{t}:{e.column}" if e.column else t)
            for t, r in by_type.items()
            for e in r.expectations
        ]
        shown = next((r for r in results if not r.success), results[0])
        return cls(
            " + ".join(r.suite for r in results),
            sum(r.rows for r in results),
            expectations,
            sum(r.seconds for r in results),
            gx_result=shown.gx_result,
        )

    @property
    def success(self) -> bool:
        return all(e.success for e in self.expectations)

    @property
    def critical_failed(self) -> list[ExpectationSummary]:
        return [e for e in self.expectations if not e.success and e.severity == "critical"]

    @property
    def warnings_failed(self) -> list[ExpectationSummary]:
        return [e for e in self.expectations if not e.success and e.severity != "critical"]

    @property
    def passed(self) -> int:
        return sum(e.success for e in self.expectations)

    @property
    def failed(self) -> int:
        return len(self.expectations) - self.passed

    def failed_names(self) -> list[str]:
        return [_label(e) for e in self.expectations if not e.success]

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per expectation, failures first: the check's summary table."""
        ordered = sorted(self.expectations, key=lambda e: (e.success, e.severity != "critical"))
        return [
            {
                "expectation": _label(e),
                "severity": e.severity,
                "passed": e.success,
                "observed": e.observed,
                "failing_examples": "; ".join(e.examples),
            }
            for e in ordered
        ]


def _label(e: ExpectationSummary) -> str:
    name = e.expectation.removeprefix("expect_")
    return f"{name}({e.column})" if e.column else name


# ---------------------------------------------------------------- GX context and suites


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
    thresholds: Thresholds = Thresholds(),
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
    thresholds: Thresholds = Thresholds(),
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
            name = f" {_short(item['name'], 40)!r}" if item.get("name") is not None else ""
            examples.append(f"id {plain(item.get('resource_id'))}{name}: {_short(value)}")
    if not examples:
        examples = [_short(plain(v)) for v in outcome.get("partial_unexpected_list") or []]
    return ExpectationSummary(
        config.type, column, severity, bool(r.success), observed, tuple(examples[:MAX_EXAMPLES])
    )


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


# ---------------------------------------------------------------- validation frames

RAW_FRAME_COLUMNS = (
    "resource_id",
    "name",
    "raw_hash",
    "links",
    "json_ok",
    "updated_at_in_future",
    "sources_present",
)
NORMALIZED_FRAME_COLUMNS = (
    "resource_id",
    "name",
    "name_len",
    "description_len",
    "genre_count",
    "tag_count",
    "vocab_share",
    "genres_outside_tree",
    "provenance_missing",
    "schema_errors",
    "control_chars",
    "normalization_version",
    "blocked",
)
INDEX_FRAME_COLUMNS = (
    "resource_id",
    "status",
    "document_key",
    "search_name",
    "normalization_version",
)
INDEX_OK_STATUSES = ("published", "withdrawn", "quarantined")


def _json_object_or_null(text: Any) -> bool:
    if is_missing(text):
        return True
    try:
        return isinstance(orjson.loads(text), dict | None)
    except orjson.JSONDecodeError:
        return False


def raw_frame(stored: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """Rows of `raw_descriptors` -> one row per resource with the columns the raw suite reads."""
    now = now or datetime.now(UTC)
    updated = pd.to_datetime(
        stored["source_updated_at"], utc=True, errors="coerce", format="ISO8601"
    )
    present = sum(stored[c].notna().astype(int) for c in SOURCE_COLUMNS) if len(stored) else 0
    return pd.DataFrame(
        {
            "resource_id": stored["resource_id"].astype("int64"),
            "name": stored["name"],
            "raw_hash": stored["raw_hash"],
            "links": stored["links"],
            "json_ok": [
                all(_json_object_or_null(row[c]) for c in SOURCE_COLUMNS)
                for row in stored[list(SOURCE_COLUMNS)].to_dict("records")
            ],
            "updated_at_in_future": (updated > pd.Timestamp(now + _FUTURE_SKEW)).fillna(False),
            "sources_present": present,
        },
        columns=list(RAW_FRAME_COLUMNS),
    )


def _kind_ok(spec: FieldSpec, value: Any) -> bool:
    if value is None:
        return spec.kind != "flag"
    if spec.kind == "text":
        return isinstance(value, str)
    if spec.kind == "text_list":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if spec.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, bool)


def _text_values(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (v for v in value if isinstance(v, str))


def normalized_frame(
    resource_type: str, stored: pd.DataFrame, vocabulary: GenreVocabulary | None = None
) -> pd.DataFrame:
    """Rows of `normalized_descriptors` -> the per-row facts the normalized suite checks.

    Built from the stored JSON, not through the typed decoder, so a wrongly typed value is
    counted (`schema_errors`) instead of crashing the check.
    """
    specs = fields_of(resource_type)
    names = {s.name for s in specs}
    records = []
    for row in stored.to_dict("records"):
        values = json_value(row["fields"])
        provenance = json_value(row["provenance"])
        schema_errors = len(names ^ set(values)) + sum(
            not _kind_ok(s, values.get(s.name)) for s in specs if s.name in values
        )
        missing = sum(
            1
            for s in specs
            if s.kind != "flag"
            and values.get(s.name) not in (None, [], "")
            and s.name not in provenance
        )
        genres = [g for g in values.get("genres") or [] if isinstance(g, str)]
        tags = [g for g in values.get("tags") or [] if isinstance(g, str)]
        outside = sum(vocabulary.canonical(g) is None for g in genres) if vocabulary else 0
        name = values.get("name")
        description = values.get("description")
        records.append(
            {
                "resource_id": int(row["resource_id"]),
                "name": name,
                "name_len": len(name) if isinstance(name, str) else 0,
                "description_len": len(description) if isinstance(description, str) else 0,
                "genre_count": len(genres),
                "tag_count": len(tags),
                "vocab_share": (len(genres) - outside) / (len(genres) + len(tags))
                if genres or tags
                else None,
                "genres_outside_tree": outside,
                "provenance_missing": missing,
                "schema_errors": schema_errors,
                "control_chars": any(
                    CONTROL_CHARS.search(t) for v in values.values() for t in _text_values(v)
                ),
                "normalization_version": row["normalization_version"],
                "blocked": bool(values.get("blocked")),
            }
        )
    frame = pd.DataFrame.from_records(records, columns=list(NORMALIZED_FRAME_COLUMNS))
    frame["vocab_share"] = frame["vocab_share"].astype("float64")
    return frame


def index_frame(
    index_keys: pd.DataFrame,
    catalog_ids: Iterable[int],
    blocked_ids: Iterable[int],
    quarantined_ids: Iterable[int],
    search_names: dict[int, str] | None = None,
) -> pd.DataFrame:
    """Reconcile the partition's documents with the catalog: one row per id seen anywhere.

    `index_keys` holds the partition's published `resource_id`, `document_key` and
    `normalization_version` (id-sized columns, read whole); `search_names` the name part of the
    documents this run wrote (checked in memory, before they are forgotten).
    Every catalog id must be published, withdrawn (blocked) or quarantined; an id that is
    published but gone from the catalog is an `orphan`, one that is none of these is `missing`.
    """
    catalog = set(map(int, catalog_ids))
    blocked = set(map(int, blocked_ids))
    quarantined = set(map(int, quarantined_ids))
    search_names = search_names or {}
    docs = {int(r["resource_id"]): r for r in index_keys.to_dict("records")}
    records = []
    for resource_id in sorted(catalog | set(docs)):
        doc = docs.get(resource_id)
        if doc is not None:
            status = "published" if resource_id in catalog else "orphan"
            if resource_id in blocked:
                status = "published_but_blocked"
        elif resource_id in blocked:
            status = "withdrawn"
        elif resource_id in quarantined:
            status = "quarantined"
        else:
            status = "missing"
        records.append(
            {
                "resource_id": resource_id,
                "status": status,
                "document_key": doc["document_key"] if doc else None,
                "search_name": search_names.get(resource_id),
                "normalization_version": doc["normalization_version"] if doc else None,
            }
        )
    return pd.DataFrame.from_records(
        records,
        columns=list(INDEX_FRAME_COLUMNS),
    )


class LayerValidator:
    """A stage's `observe` hook: turns each chunk it writes into the suite's per-row facts.

    The facts are a handful of small columns per row, so a partition's worth stays far below
    one chunk of the rows themselves; the suite then validates them once per partition. Rows a
    rerun skips by hash were validated when they were written.
    """

    def __init__(
        self,
        layer: Layer,
        resource_type: str,
        vocabulary: GenreVocabulary | None = None,
        with_profile: bool = False,
    ) -> None:
        self.layer = layer
        self.resource_type = resource_type
        self.vocabulary = vocabulary
        self.frames: list[pd.DataFrame] = []
        self.search_names: dict[int, str] = {}
        self.profile = ProfileBuilder(resource_type) if with_profile else None
        self.rows = 0
        self.seconds = 0.0  # time spent building facts, for the checks' share of a run

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        started = time.perf_counter()
        self.rows += len(rows)
        if self.layer == "index":
            self.search_names.update({int(r["resource_id"]): r["search_name"] for r in rows})
        elif self.layer == "raw":
            self.frames.append(raw_frame(pd.DataFrame(rows)))
        else:  # fields and provenance parsed once, for the facts and the profile
            parsed = [
                {**r, "fields": json_value(r["fields"]), "provenance": json_value(r["provenance"])}
                for r in rows
            ]
            stored = pd.DataFrame(parsed)
            self.frames.append(normalized_frame(self.resource_type, stored, self.vocabulary))
            if self.profile is not None:
                self.profile.add(parsed)
        self.seconds += time.perf_counter() - started

    def frame(self) -> pd.DataFrame:
        """The facts of every row written, one frame for the suite."""
        columns = RAW_FRAME_COLUMNS if self.layer == "raw" else NORMALIZED_FRAME_COLUMNS
        frames = [f for f in self.frames if len(f)]
        if not frames:
            return pd.DataFrame(columns=list(columns))
        return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------- profiles and drift

_LIST_SOURCE = re.compile(r"^([a-z_]+)\.")


def _sources_of(spec: FieldSpec, origin: dict[str, Any] | None) -> set[str]:
    if not origin:
        return set()
    if spec.kind == "text_list":
        return {m.group(1) for o in origin.get("from", []) if (m := _LIST_SOURCE.match(o))}
    return {origin["source"]} if "source" in origin else set()


class ProfileBuilder:
    """A partition's shape, built chunk by chunk (memory: two ints per row for the quantiles).

    `present.<field>.<source>` is the share of rows whose value came (at least partly) from that
    source: a source that stops sending a field shows as a drop there. `null_rate.<field>` is the
    share of rows with no value at all. Flat, so Dagster can plot each number over time.
    """

    def __init__(self, resource_type: str) -> None:
        self.specs = [s for s in fields_of(resource_type) if s.kind != "flag"]
        self.rows = 0
        self.present: dict[tuple[str, str], int] = {}
        self.nulls = dict.fromkeys((s.name for s in self.specs), 0)
        self.genres: set[str] = set()
        self.tags: set[str] = set()
        self.name_len: list[int] = []
        self.description_len: list[int] = []

    def add(self, stored_rows: Iterable[dict[str, Any]]) -> None:
        for row in stored_rows:
            self.rows += 1
            values = json_value(row["fields"])
            provenance = json_value(row["provenance"])
            for spec in self.specs:
                if values.get(spec.name) in (None, [], ""):
                    self.nulls[spec.name] += 1
                for source in _sources_of(spec, provenance.get(spec.name)):
                    key = (spec.name, source)
                    self.present[key] = self.present.get(key, 0) + 1
            self.genres.update(values.get("genres") or [])
            self.tags.update(values.get("tags") or [])
            self.name_len.append(len(values.get("name") or ""))
            self.description_len.append(len(values.get("description") or ""))

    def values(self) -> dict[str, float]:
        rows = self.rows
        out: dict[str, float] = {"rows": float(rows)}
        for spec in self.specs:
            out[f"null_rate.{spec.name}"] = self.nulls[spec.name] / rows if rows else 0.0
            for where in {w.source.value for w in spec.sources}:
                share = self.present.get((spec.name, where), 0) / rows if rows else 0.0
                out[f"present.{spec.name}.{where}"] = share
        out["distinct.genres"] = float(len(self.genres))
        out["distinct.tags"] = float(len(self.tags))
        for label, lengths in (("name", self.name_len), ("description", self.description_len)):
            series = pd.Series(lengths or [0], dtype="float64")
            for q in (0.5, 0.95):
                out[f"length.{label}.p{int(q * 100)}"] = float(series.quantile(q))
        return {k: round(v, 4) for k, v in out.items()}


def profile(resource_type: str, stored: pd.DataFrame) -> dict[str, float]:
    """The profile of a whole frame of stored normalized rows (see `ProfileBuilder`)."""
    builder = ProfileBuilder(resource_type)
    builder.add(stored.to_dict("records"))
    return builder.values()


@dataclass(frozen=True)
class Drift:
    metric: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return round(self.after - self.before, 4)


def compare_profiles(
    before: dict[str, float] | None, after: dict[str, float], t: Thresholds = Thresholds()
) -> list[Drift]:
    """Metrics that moved past their threshold; rates absolutely, counts and lengths relatively."""
    if not before:
        return []
    if min(before.get("rows", 0), after.get("rows", 0)) < t.drift_min_rows:
        return []
    drifts = []
    for metric in sorted(set(before) | set(after)):
        if metric == "rows":
            continue
        old, new = before.get(metric, 0.0), after.get(metric, 0.0)
        if metric.startswith(("null_rate.", "present.")):
            moved = abs(new - old) > t.drift_max_rate_change
        else:
            delta = abs(new - old)
            moved = (
                delta >= t.drift_min_absolute_change
                and delta > t.drift_max_relative_change * max(abs(old), 1.0)
            )
        if moved:
            drifts.append(Drift(metric, old, new))
    return drifts


# ---------------------------------------------------------------- quarantine summary


@dataclass(frozen=True)
class QuarantineSummary:
    total: int
    share: float
    by_stage_rule: dict[str, int]
    examples: tuple[str, ...]


def summarize_quarantine(rows: pd.DataFrame, partition_rows: int) -> QuarantineSummary:
    """Count a partition's quarantined rows per stage and rule, with a few examples."""
    total = len(rows)
    counts = (
        rows.groupby(["stage", "rule"]).size().to_dict() if total else {}  # type: ignore[union-attr]
    )
    examples = tuple(
        f"{r.resource_type}:{r.resource_id} [{r.stage}] {r.rule}: {_short(r.reason, 100)}"
        for r in rows.head(MAX_EXAMPLES).itertuples()
    )
    return QuarantineSummary(
        total,
        round(total / partition_rows, 4) if partition_rows else float(total > 0),
        {f"{stage}/{rule}": int(n) for (stage, rule), n in counts.items()},
        examples,
    )


# ---------------------------------------------------------------- Data Docs


def data_docs_root() -> Path:
    """Where Data Docs land: `$DESCRIPTOR_DATA_DOCS_DIR`, else
    `$DESCRIPTOR_PIPELINE_DATA/data_docs`, else the system temp dir (read at run time)."""
    explicit = os.environ.get("DESCRIPTOR_DATA_DOCS_DIR")
    if explicit:
        return Path(explicit)
    data = os.environ.get("DESCRIPTOR_PIPELINE_DATA")
    if data:
        return Path(data) / "data_docs"
    return Path(tempfile.gettempdir()) / "descriptor_pipeline" / "data_docs"


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part)


def render_data_docs(
    result: SuiteResult, run_id: str, partition_key: str, root: Path | None = None
) -> Path:
    """Render one validation as a static GX Data Docs page: `<root>/<run>/<partition>/<suite>.html`.

    GX's own renderer and page view, so the page looks like any Data Docs site; one file per
    validation keeps runs from overwriting each other and needs no docs-site configuration.
    """
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    folder = (root or data_docs_root()) / _safe(run_id) / _safe(partition_key)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_safe(result.suite)}.html"
    for item in result.gx_result.results:  # GX's renderer refuses numpy scalars
        if item.result and hasattr(item.result.get("observed_value"), "item"):
            item.result["observed_value"] = item.result["observed_value"].item()
    try:
        page = DefaultJinjaPageView().render(
            ValidationResultsPageRenderer().render(result.gx_result)
        )
    except Exception as exc:  # a renderer bug must not fail the check: keep a plain page
        rows = "".join(
            f"<tr><td>{html.escape(str(r['expectation']))}</td><td>{r['severity']}</td>"
            f"<td>{r['passed']}</td><td>{html.escape(str(r['failing_examples']))}</td></tr>"
            for r in result.summary_rows()
        )
        page = (
            f"<html><body><p>GX renderer failed: {html.escape(repr(exc))}</p><table>{rows}</table>"
        )
    path.write_text(page, encoding="utf-8")
    return path
