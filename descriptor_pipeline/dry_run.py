"""A dry run of normalization over a sample of the catalog: step one of onboarding a catalog.

Before the first backfill a user wants to know, per canonical field, which source feeds it, how
often, what the rules make of the values, and what would be refused. This reads sample rows and
runs the same validation and normalization the assets run; it writes nothing anywhere.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.normalization import RowSources, normalize_rows, row_sources
from descriptor_pipeline.raw_stage import validate_raw
from descriptor_pipeline.rejections import RejectedValue
from descriptor_pipeline.rules import NormalizationContext
from descriptor_pipeline.schema import SourcePath
from descriptor_pipeline.stages import normalization_context

EXAMPLES_PER_FIELD = 3
EXCERPT_CHARS = 120


def _excerpt(value: Any) -> Any:
    if isinstance(value, str) and len(value) > EXCERPT_CHARS:
        return value[:EXCERPT_CHARS] + "…"
    if isinstance(value, list):
        return [_excerpt(v) for v in value[:5]]
    return value


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value is not False


@dataclass
class FieldProfile:
    """How one canonical field came out over the sample."""

    name: str
    filled: int = 0
    by_path: Counter[str] = field(default_factory=Counter)  # rows where the path holds a value
    won_by: Counter[str] = field(default_factory=Counter)  # rows whose value came from the path
    examples: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self, rows: int) -> dict[str, Any]:
        return {
            "coverage": round(self.filled / rows, 3) if rows else 0.0,
            "source_coverage": {p: round(n / rows, 3) for p, n in self.by_path.items()},
            "value_from": dict(self.won_by),
            "examples": self.examples,
        }


def profile_rows(
    resource_type: str, rows: list[dict[str, Any]], context: NormalizationContext
) -> dict[str, Any]:
    """Coverage per canonical field and source path, examples before/after the rules, and every
    rejected row with its rule and reason, for one resource type's sample rows."""
    valid, raw_rejections = validate_raw([dict(r) for r in rows])
    records, rejections = normalize_rows(resource_type, valid, context)
    by_id = {int(r["resource_id"]): r for r in valid}
    specs = context.fields[resource_type]
    profiles = {spec.name: FieldProfile(spec.name) for spec in specs}
    for record in records:  # rows that normalized: their documents parse
        sources = row_sources(by_id[int(record["resource_id"])])
        provenance = orjson.loads(record["provenance"])
        for spec in specs:
            profile = profiles[spec.name]
            for where in spec.sources:
                try:
                    raw = sources.lookup(where)
                except RejectedValue:
                    raw = None
                if _present(raw):
                    profile.by_path[str(where)] += 1
            value = record[spec.name]
            if not _present(value):
                continue
            profile.filled += 1
            origin = provenance.get(spec.name, {})
            paths = origin.get("from") or [origin.get("path")]
            for path in dict.fromkeys(p for p in paths if p):
                profile.won_by[path] += 1
            paths = [p for p in paths if p]
            if paths and len(profile.examples) < EXAMPLES_PER_FIELD:
                before = _before(sources, spec.sources, list(dict.fromkeys(paths)))
                if before != value and [before] != value:
                    profile.examples.append(
                        {
                            "id": record["resource_id"],
                            "before": _excerpt(before),
                            "after": _excerpt(value),
                        }
                    )
    refused = [
        {
            "id": r.resource_id,
            "stage": r.stage,
            "rule": r.rule,
            "reason": r.reason,
            "value": _excerpt(r.raw_value),
        }
        for r in (*raw_rejections, *rejections)
    ]
    return {
        "rows_sampled": len(rows),
        "rows_normalized": len(records),
        "rows_refused": len(refused),
        "fields": {name: p.as_dict(len(records)) for name, p in profiles.items()},
        "refused": refused,
    }


def _before(sources: RowSources, specs: tuple[SourcePath, ...], paths: list[str]) -> Any:
    """The raw value(s) the normalized value was made from: the winning path's value, or for
    a list field every contributing path's values in precedence order."""
    values: list[Any] = []
    for where in specs:
        if str(where) not in paths:
            continue
        try:
            value = sources.lookup(where)
        except RejectedValue:
            continue
        if len(paths) == 1 and not isinstance(value, list):
            return value
        values.extend(value if isinstance(value, list) else [value])
    return values[0] if len(paths) == 1 and "[]" in paths[0] and len(values) == 1 else values


def render(report: dict[str, dict[str, Any]]) -> str:
    """The report as text a person reads in a terminal."""
    lines: list[str] = []
    for resource_type, part in report.items():
        lines.append(
            f"== {resource_type}: {part['rows_sampled']} sampled, {part['rows_normalized']} "
            f"normalized, {part['rows_refused']} refused"
        )
        for name, f in part["fields"].items():
            sources = ", ".join(f"{p} {v:.0%}" for p, v in f["source_coverage"].items()) or "-"
            lines.append(f"  {name:<14} {f['coverage']:>5.0%}  sources: {sources}")
            for example in f["examples"]:
                lines.append(f"      {example['before']!r} -> {example['after']!r}")
        for refused in part["refused"]:
            lines.append(
                f"  refused {resource_type}:{refused['id']} [{refused['rule']}] {refused['reason']}"
            )
    return "\n".join(lines)


MAX_SAMPLE = 10_000  # a dry run reads at most this many rows per resource type


def profile_catalog(
    source: CatalogSource, resource_types: list[str], sample: int
) -> dict[str, dict[str, Any]]:
    """Sample each resource type (oldest and newest ids) and profile it; reads only."""
    if not 1 <= sample <= MAX_SAMPLE:
        raise ValueError(f"sample must be between 1 and {MAX_SAMPLE} rows, got {sample}")
    context = normalization_context(source)
    report = {}
    for resource_type in resource_types:
        ids = source.sample_ids(resource_type, sample)
        rows = source.rows_for_ids(resource_type, ids) if ids else []
        report[resource_type] = profile_rows(resource_type, rows, context)
    return report
