"""Drift: a partition's profile (null rates, source shares, lengths) against its baseline.

The baseline itself is stored by the index store (`IndexStore.load_baseline`/`save_baseline`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from descriptor_pipeline.quality.results import DEFAULTS, Thresholds
from descriptor_pipeline.schema import fields_of


def profile_of(resource_type: str, frame: pd.DataFrame, values: pd.DataFrame) -> dict[str, float]:
    """A partition's shape, from the frames its suite validates (`quality.frames`): the row
    frame (a null where a field has no value) and the value frame (one line per value, with
    the source its provenance names).

    `present.<field>.<source>` is the share of rows whose value came (at least partly) from that
    source (distinct ids over rows: one validator sees each id once), so a source that stops
    sending a field shows as a drop there. `null_rate.<field>` is the
    share of rows with no value at all. Flat, so Dagster can plot each number over time.
    """
    rows = len(frame)
    out: dict[str, float] = {"rows": float(rows)}
    present: dict[tuple[str, str], int] = {}
    if len(values):
        with_source = values.dropna(subset=["source"])
        present = with_source.groupby(["field", "source"])["resource_id"].nunique().to_dict()
    for spec in (s for s in fields_of(resource_type) if s.kind != "flag"):
        nulls = int(frame[spec.name].isna().sum()) if rows else 0
        out[f"null_rate.{spec.name}"] = nulls / rows if rows else 0.0
        for where in {w.source.value for w in spec.sources}:
            share = present.get((spec.name, where), 0) / rows if rows else 0.0
            out[f"present.{spec.name}.{where}"] = share
    for field in ("genres", "tags"):
        distinct = values.loc[values["field"] == field, "value"].nunique() if len(values) else 0
        out[f"distinct.{field}"] = float(distinct)
    for label in ("name", "description"):
        lengths = [len(v) if isinstance(v, str | list) else 0 for v in frame[label]] or [0]
        series = pd.Series(lengths, dtype="float64")
        for q in (0.5, 0.95):
            out[f"length.{label}.p{int(q * 100)}"] = float(series.quantile(q))
    return {k: round(v, 4) for k, v in out.items()}


@dataclass(frozen=True)
class Drift:
    metric: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return round(self.after - self.before, 4)


def compare_profiles(
    before: dict[str, float] | None, after: dict[str, float], t: Thresholds = DEFAULTS
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


def baseline_note(
    baseline: dict[str, float] | None, current: dict[str, float], t: Thresholds = DEFAULTS
) -> str:
    """What a partition's profile was compared with, in words for the check."""
    if not current.get("rows"):
        return "nothing normalized: the last result stands"
    if baseline is None:
        return "none (first run)"
    if min(baseline.get("rows", 0), current["rows"]) < t.drift_min_rows:
        return f"too few rows to compare (< {t.drift_min_rows})"
    return "previous whole-partition profile that passed"


def _largest_change(before: dict[str, float] | None, after: dict[str, float], prefix: str) -> float:
    if not before:
        return 0.0
    keys = [k for k in set(before) | set(after) if k.startswith(prefix)]
    return max((abs(after.get(k, 0.0) - before.get(k, 0.0)) for k in keys), default=0.0)


def plot_metrics(
    profiles: list[tuple[dict[str, float] | None, dict[str, float]]],
) -> dict[str, float]:
    """A few numbers per resource type for the check's plots over time: the profile's summary
    and its largest moves, not one series per field (those stay in the `profile` entry).

    `profiles` holds (baseline, current) of each partition of one type; rows are summed, the
    rest averaged over the partitions that had rows.
    """
    measured = [(b, c) for b, c in profiles if c.get("rows")]
    per_partition = [
        {
            "mean_null_rate": _mean([v for k, v in c.items() if k.startswith("null_rate.")]),
            "max_null_rate_change": _largest_change(b, c, "null_rate."),
            "max_source_share_change": _largest_change(b, c, "present."),
            "distinct_genres": c.get("distinct.genres", 0.0),
            "distinct_tags": c.get("distinct.tags", 0.0),
            "name_length_p50": c.get("length.name.p50", 0.0),
            "description_length_p95": c.get("length.description.p95", 0.0),
        }
        for b, c in measured
    ]
    out = {"rows": float(sum(c.get("rows", 0.0) for _, c in profiles))}
    for metric in per_partition[0] if per_partition else ():
        out[metric] = round(_mean([p[metric] for p in per_partition]), 4)
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
