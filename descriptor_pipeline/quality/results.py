"""What a quality run produces: thresholds in, plain-data suite results out.

No GX object passes this point (except the raw result kept for Data Docs), so checks, the CLI
and tests read results without importing Great Expectations.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

Layer = Literal["raw", "normalized", "index"]
LAYERS: tuple[Layer, ...] = ("raw", "normalized", "index")
MAX_EXAMPLES = 5


# ---------------------------------------------------------------- thresholds


@dataclass(frozen=True)
class Thresholds:
    """Every tunable number of the suites and of drift, in one place.

    Defaults come from the demo catalog (about 10% of resources carry a tree genre, and 92-100%
    of a row's genre/tag values are tree genres). Operators change them through the
    `quality` resource (`defs/resources.py`: launchpad or code location), not here.
    """

    min_vocab_share: float = 0.8  # mean share of a row's genre+tag values that are tree genres
    min_genre_coverage: float = 0.03  # share of rows with at least one genre
    genres_in_tree_mostly: float = 0.99  # genres that are no longer in the tree (tree edited)
    max_quarantine_share: float = 0.05  # above this the quarantine check is an ERROR, else WARN
    drift_min_rows: int = 20  # smaller partitions are too noisy to compare rates
    drift_max_rate_change: float = 0.10  # absolute change of a null rate or source share
    drift_max_relative_change: float = 0.5  # relative change of counts and length quantiles
    drift_min_absolute_change: float = 5.0  # ...and at least this much (chars, distinct tags)
    # (field, lowest share of rows with a value): the normalized warnings' null rates
    min_present: tuple[tuple[str, float], ...] = ()

    def with_overrides(self, overrides: dict[str, float]) -> Thresholds:
        """These thresholds with one resource type's overrides: a field name of this class,
        or `present.<field>` for the lowest share of rows with a value in that field."""
        names = {f.name for f in fields(self)} - {"min_present"}
        unknown = [k for k in overrides if k not in names and not k.startswith("present.")]
        if unknown:
            raise ValueError(
                f"unknown quality thresholds {unknown}: use one of {sorted(names)} "
                "or present.<field>"
            )
        present = dict(self.min_present)
        present.update(
            {k.removeprefix("present."): float(v) for k, v in overrides.items() if "." in k}
        )
        plain = {k: v for k, v in overrides.items() if k in names}
        return replace(self, **plain, min_present=tuple(sorted(present.items())))


DEFAULTS = Thresholds()  # the suites' and drift's thresholds when none are given

# Per resource type, over the common thresholds above. Measured on the demo catalog (share of
# all genre and tag values that map to a genre of the tree, per partition): genre 1.0, artist
# 0.95-1.0, track 0.91-1.0, album 0.75 (album tags are often moods and eras, not genres). An
# operator changes or adds a type's own through the `quality` resource's `per_resource_type`.
DEFAULT_PER_TYPE: dict[str, dict[str, float]] = {"album": {"min_vocab_share": 0.7}}


# ---------------------------------------------------------------- which check says what


@dataclass(frozen=True)
class SuiteCheck:
    """One asset check made of one layer's expectations of one severity. Declared here once:
    the check specs (blocking or not) and the results are both built from this list."""

    name: str
    layer: Layer
    severity: Literal["critical", "warning"]
    blocking: bool
    description: str


SUITE_CHECKS: tuple[SuiteCheck, ...] = (
    SuiteCheck(
        "raw_suite",
        "raw",
        "critical",
        True,
        "GX over the raw rows this run wrote: ids unique and inside the partition's range, "
        "raw_hash a SHA-256, links and every source column a JSON object. Blocks normalizing.",
    ),
    SuiteCheck(
        "raw_warnings",
        "raw",
        "warning",
        False,
        "GX over the raw rows this run wrote: source_updated_at not in the future (5 minutes "
        "of clock skew allowed). Never blocks.",
    ),
    SuiteCheck(
        "normalized_suite",
        "normalized",
        "critical",
        True,
        "GX over the normalized rows this run wrote: each field of its kind, every value naming "
        "a known source, name 1..512 chars, description <= 2001, no control characters in any "
        "value, version current. Blocks publishing.",
    ),
    SuiteCheck(
        "normalized_warnings",
        "normalized",
        "warning",
        False,
        "GX over the normalized rows this run wrote: share of genre and tag values in the "
        "genre tree, genre coverage, per-type field null rates. Never blocks.",
    ),
    SuiteCheck(  # not blocking: nothing is downstream of the index
        "index_suite",
        "index",
        "critical",
        False,
        "GX index suite: every catalog id published, withdrawn or quarantined (row count "
        "equals the catalog's), one document per resource, keys of the type, version current; "
        "documents written by this run searchable by name.",
    ),
)


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

    def of_severity(self, severity: str) -> SuiteResult:
        """Only the expectations of one severity (`warning` takes every non-critical one)."""
        kept = [
            e for e in self.expectations if (e.severity == "critical") == (severity == "critical")
        ]
        return replace(self, expectations=kept)

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


def short(value: Any, limit: int = 80) -> str:
    """A value as text for a check's examples, clipped so metadata stays small."""
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"
