"""Per-row facts the suites check, built from a stage's rows while they are in memory.

Each layer's rows become a small frame of derived columns (JSON parses, lengths, vocabulary
share, reconciliation status); `LayerValidator` collects them chunk by chunk as a stage writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pandas as pd

from descriptor_pipeline.quality.drift import ProfileBuilder
from descriptor_pipeline.quality.results import Layer
from descriptor_pipeline.rules import CONTROL_CHARS, GenreVocabulary
from descriptor_pipeline.schema import SOURCE_COLUMNS, FieldSpec, fields_of
from descriptor_pipeline.values import is_missing, json_value

_FUTURE_SKEW = timedelta(minutes=5)  # clock skew between the catalog's writers and us

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
