"""The frames each layer's suite validates, built from a stage's rows while they are in memory.

The columns are the data's own: the stored JSON text, ids, hashes, names, each field's value
and the source its provenance names, so a failing expectation reads in the data's terms
("2 of 999 values of `name` longer than 512"), not as a flag computed here. `LayerValidator`
collects them chunk by chunk as a stage writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from descriptor_pipeline.quality.drift import profile_of
from descriptor_pipeline.quality.results import Layer
from descriptor_pipeline.rules import GenreVocabulary
from descriptor_pipeline.schema import SOURCE_COLUMNS, fields_of
from descriptor_pipeline.values import json_value

RAW_FRAME_COLUMNS = (
    "resource_id",
    "name",
    "raw_hash",
    "links",
    *SOURCE_COLUMNS,
    "source_updated_at",
)
INDEX_KEY_COLUMNS = ("resource_id", "document_key", "normalization_version")
INDEX_FRAME_COLUMNS = (
    "resource_id",
    "status",
    "document_key",
    "search_name",
    "normalization_version",
)
VALUE_FRAME_COLUMNS = ("resource_id", "field", "value", "source", "in_tree")
TREE_FIELDS = ("genres", "tags")  # values the genre vocabulary expectations read
INDEX_OK_STATUSES = ("published", "withdrawn", "quarantined")
FUTURE_SKEW = timedelta(minutes=5)  # clock skew between the catalog's writers and us


def raw_frame(stored: pd.DataFrame) -> pd.DataFrame:
    """Rows of `raw_descriptors` as the stage wrote them, the suite's columns only (one that
    is missing fails the column-set expectation) and the timestamp parsed to UTC."""
    frame = stored[[c for c in RAW_FRAME_COLUMNS if c in stored.columns]].copy()
    if "resource_id" in frame:  # int64 when every id is one, as pandas infers from the rows
        frame["resource_id"] = frame["resource_id"].infer_objects()
    if "source_updated_at" in frame:
        frame["source_updated_at"] = pd.to_datetime(
            frame["source_updated_at"], utc=True, errors="coerce", format="ISO8601"
        )
    return frame


def normalized_columns(resource_type: str) -> list[str]:
    """The normalized frame's columns: the row's stored columns, then each field's value."""
    specs = [s for s in fields_of(resource_type) if s.kind != "flag"]
    return ["resource_id", "resource_type", "normalization_version", *(s.name for s in specs)]


def _source_of(item: Any) -> str | None:
    """`links.genres[0]` -> links: the source part of a list item's provenance path."""
    return str(item).split(".", 1)[0].split("[", 1)[0] if item else None


class _Sources:
    """The source of each value a provenance entry covers (one for a single value), with the
    source of each list item's path worked out once: a partition has few distinct paths."""

    def __init__(self) -> None:
        self.of_path: dict[str, str | None] = {}

    def __call__(self, origin: Any) -> list[str | None]:
        if not isinstance(origin, dict):
            return []
        if "source" in origin:
            return [str(origin["source"])]
        out: list[str | None] = []
        for item in origin.get("from") or ():
            if type(item) is not str:  # as stored, whatever it is
                out.append(_source_of(item))
            elif item in self.of_path:
                out.append(self.of_path[item])
            else:
                out.append(self.of_path.setdefault(item, _source_of(item)))
        return out


def normalized_facts(
    resource_type: str, rows: Iterable[dict[str, Any]], vocabulary: GenreVocabulary | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stored normalized rows -> the row frame (one row per resource, its fields as columns,
    kept as stored so a wrongly typed value shows as itself) and the value frame (every value
    of every field, one per line: the field, the value as text, the source its provenance
    names (null: none), and for genres and tags the genre-tree name it maps to (`in_tree`,
    null when the tree has none)).

    One walk that builds both, without copying the rows, the value frame column by column: a
    walk per frame and one for the drift profile (now computed from these frames,
    `drift.profile_of`) cost about twice as much, and a tuple per value line 40% more than
    these columns; the checks' share of a run is measured (`docs/benchmarks.md`).
    """
    specs = [(s.name, s.name in TREE_FIELDS) for s in fields_of(resource_type) if s.kind != "flag"]
    canonical_of: dict[str, str | None] = {}  # the tree's name of a value: few distinct ones
    sources_of = _Sources()
    records: list[list[Any]] = []
    ids: list[int] = []
    fields: list[str] = []
    texts: list[str] = []
    sources: list[str | None] = []
    in_tree: list[str | None] = []
    for row in rows:
        values = json_value(row["fields"])
        provenance = json_value(row["provenance"])
        values = values if isinstance(values, dict) else {}
        provenance = provenance if isinstance(provenance, dict) else {}
        resource_id = int(row["resource_id"])
        record = [resource_id, row.get("resource_type"), row["normalization_version"]]
        for name, tree in specs:
            value = values.get(name)
            if value is None or value == "" or value == []:
                record.append(None)
                continue
            record.append(value)
            items = value if isinstance(value, list) else [value]
            count = len(items)
            ids += [resource_id] * count
            fields += [name] * count
            texts += [item if type(item) is str else str(item) for item in items]
            found = sources_of(provenance.get(name))
            sources += found[:count]
            sources += [None] * (count - len(found))  # nothing when it covers every value
            if not tree:
                in_tree += [None] * count
                continue
            for item in items:
                if not isinstance(item, str):
                    in_tree.append(None)
                    continue
                if item not in canonical_of:
                    canonical_of[item] = vocabulary.canonical(item) if vocabulary else item
                in_tree.append(canonical_of[item])
        records.append(record)
    frame = pd.DataFrame(records, columns=normalized_columns(resource_type), dtype=object)
    if not ids:  # no value at all: the columns without a type, as the records would build it
        return frame, pd.DataFrame(columns=list(VALUE_FRAME_COLUMNS))
    lines = dict(zip(VALUE_FRAME_COLUMNS, (ids, fields, texts, sources, in_tree), strict=True))
    return frame, pd.DataFrame(lines, columns=list(VALUE_FRAME_COLUMNS))


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
    catalog = pd.Index(catalog_ids, dtype="int64")
    docs = (
        index_keys[list(INDEX_KEY_COLUMNS)]
        .astype({"resource_id": "int64"})
        .drop_duplicates("resource_id", keep="last")
    )
    ids = catalog.union(pd.Index(docs["resource_id"], dtype="int64")).unique().sort_values()
    frame = pd.DataFrame({"resource_id": ids}).merge(
        docs, on="resource_id", how="left", indicator="_doc"
    )
    has_doc = (frame.pop("_doc") == "both").to_numpy()
    blocked = frame["resource_id"].isin(pd.Index(blocked_ids, dtype="int64")).to_numpy()
    in_catalog = frame["resource_id"].isin(catalog).to_numpy()
    quarantined = frame["resource_id"].isin(pd.Index(quarantined_ids, dtype="int64")).to_numpy()
    frame["status"] = np.select(
        [has_doc & blocked, has_doc & in_catalog, has_doc, blocked, quarantined],
        ["published_but_blocked", "published", "orphan", "withdrawn", "quarantined"],
        default="missing",
    )
    frame["search_name"] = frame["resource_id"].map(search_names or {}).astype(object)
    return frame[list(INDEX_FRAME_COLUMNS)]


class LayerValidator:
    """A stage's `observe` hook: keeps the columns each chunk's suite reads.

    A few columns per row (the stored JSON text is shared with the rows, not copied), so a
    partition's worth stays small; the suite then validates them once per partition. Rows a
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
        self.value_frames: list[pd.DataFrame] = []
        self.search_names: dict[int, str] = {}
        self.with_profile = with_profile
        self.rows = 0
        self.seconds = 0.0  # time spent building frames, for the checks' share of a run

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        started = time.perf_counter()
        self.rows += len(rows)
        if self.layer == "index":
            self.search_names.update({int(r["resource_id"]): r["search_name"] for r in rows})
        elif self.layer == "raw":
            # object columns hold the rows' own strings: pandas' default str dtype copied every
            # JSON payload into Arrow memory for the partition's lifetime (3x slower to build;
            # GX's regex metric still makes its own str copy of a column while it runs)
            self.frames.append(raw_frame(pd.DataFrame(rows, dtype=object)))
        else:
            frame, values = normalized_facts(self.resource_type, rows, self.vocabulary)
            self.frames.append(frame)
            self.value_frames.append(values)
        self.seconds += time.perf_counter() - started

    def frame(self) -> pd.DataFrame:
        """Every row written, one frame for the suite."""
        if self.layer == "raw":
            columns = list(RAW_FRAME_COLUMNS)
        else:
            columns = normalized_columns(self.resource_type)
        return concat_frames(self.frames, columns)

    def values(self) -> pd.DataFrame:
        """Every field value written, one per line (normalized layer)."""
        return concat_frames(self.value_frames, list(VALUE_FRAME_COLUMNS))

    def profile(self) -> dict[str, float] | None:
        """The drift profile of the rows written (normalized layer, when asked for)."""
        if not self.with_profile:
            return None
        return profile_of(self.resource_type, self.frame(), self.values())


def concat_frames(frames: Iterable[pd.DataFrame], columns: list[str] | None = None) -> pd.DataFrame:
    """One frame of many, the empty ones dropped; when all are empty, an empty frame with
    `columns` (or the first frame, which has its own)."""
    frames = list(frames)
    kept = [f for f in frames if len(f)]
    if len(kept) == 1:
        return kept[0]
    if kept:
        return pd.concat(kept, ignore_index=True)
    if columns is not None or not frames:
        return pd.DataFrame(columns=columns)
    return frames[0]
