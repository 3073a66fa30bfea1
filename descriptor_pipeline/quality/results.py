"""What a quality run produces: thresholds in, plain-data suite results out.

No GX object passes this point (except the raw result kept for Data Docs), so checks, the CLI
and tests read results without importing Great Expectations.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
    min_genre_coverage: float = 0.03  # share of rows with at least one tree genre
    genres_in_tree_mostly: float = 0.99  # genres that are no longer in the tree (tree edited)
    max_quarantine_share: float = 0.05  # above this the quarantine check is an ERROR, else WARN
    drift_min_rows: int = 20  # smaller partitions are too noisy to compare rates
    drift_max_rate_change: float = 0.10  # absolute change of a null rate or source share
    drift_max_relative_change: float = 0.5  # relative change of counts and length quantiles
    drift_min_absolute_change: float = 5.0  # ...and at least this much (chars, distinct tags)


DEFAULTS = Thresholds()  # the suites' and drift's thresholds when none are given


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


def short(value: Any, limit: int = 80) -> str:
    """A value as text for a check's examples, clipped so metadata stays small."""
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"
