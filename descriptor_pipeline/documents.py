"""Index documents: what search reads, built from normalized descriptors (pure functions)."""

from __future__ import annotations

import unicodedata
from typing import Any

import orjson

from descriptor_pipeline.normalization import content_hash
from descriptor_pipeline.schema import fields_of
from descriptor_pipeline.values import is_missing, json_value

DOCUMENT_VERSION = 2  # 2: search columns hold folded text (search_key), display text untouched

# Weighted search parts: name > aliases > genres/tags/linked names > description and the rest.
WEIGHT_COLUMNS = {
    "A": "search_name",
    "B": "search_aliases",
    "C": "search_facets",
    "D": "search_description",
}
INDEX_COLUMNS = (
    "resource_type",
    "resource_id",
    "document_key",
    "name",
    "display_text",
    *WEIGHT_COLUMNS.values(),
    "document",
    "hidden",
    "normalization_version",
    "content_hash",
    "source_updated_at",
)


def search_key(text: str) -> str:
    """What search compares: NFKC, lower case, single spaces. The search columns hold this and
    a query is folded the same way, so an exact-name test is one indexed equality on both
    backends (PostgreSQL's `lower(normalize(q, NFKC))` gives the same key); the displayed name
    keeps the catalog's own characters. A symbol that folds into letters ("™" -> "TM") becomes
    a word of its own instead of gluing onto the word before it. ASCII is its own NFKC and no
    ASCII symbol folds into a letter, so most text skips the per-character pass."""
    if text.isascii():
        return " ".join(text.lower().split())
    spaced = "".join(
        f" {c} " if not c.isalnum() and unicodedata.normalize("NFKC", c).isalnum() else c
        for c in text
    )
    return " ".join(unicodedata.normalize("NFKC", spaced).lower().split())


def _present(value: Any) -> bool:
    if is_missing(value):
        return False
    if isinstance(value, list | tuple):
        return len(value) > 0
    return value != ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value.tolist())
    return [value]


def display_text(resource_type: str, row: dict[str, Any]) -> str:
    """One line a result list can show: name, type and the most telling facts."""
    parts = [f"{row['name']} ({resource_type})"]
    for key in ("artists", "album", "country", "release_year", "label", "parent"):
        value = row.get(key)
        if _present(value):
            text = (
                ", ".join(map(str, _as_list(value)[:3]))
                if isinstance(value, list | tuple) or (hasattr(value, "tolist"))
                else str(value)
            )
            parts.append(text)
    genres = _as_list(row.get("genres"))[:3]
    if genres:
        parts.append(" / ".join(genres))
    return " · ".join(parts)


def build_document(resource_type: str, row: dict[str, Any]) -> dict[str, Any]:
    """`row["provenance"]`: JSON text, or the dict PostgreSQL's JSONB already decoded."""
    specs = fields_of(resource_type)
    provenance = json_value(row["provenance"])
    fields: dict[str, Any] = {}
    buckets: dict[str, list[str]] = {w: [] for w in WEIGHT_COLUMNS}
    for spec in specs:
        value = row.get(spec.name)
        if spec.kind == "text_list":
            value = [str(v) for v in _as_list(value)]
        elif not _present(value):
            value = None
        elif spec.kind == "int":
            value = int(value)
        elif spec.kind == "flag":
            value = bool(value)
        if _present(value) and spec.kind != "flag":
            fields[spec.name] = {"value": value, **provenance.get(spec.name, {})}
            if spec.weight is not None:
                buckets[spec.weight].extend(value if isinstance(value, list) else [str(value)])
    document = {
        "resource_type": resource_type,
        "resource_id": int(row["resource_id"]),
        "fields": fields,
        "normalization_version": row["normalization_version"],
        "document_version": DOCUMENT_VERSION,
    }
    out = {
        "resource_type": resource_type,
        "resource_id": int(row["resource_id"]),
        "document_key": f"{resource_type}:{int(row['resource_id'])}",
        "name": row["name"],
        "display_text": display_text(resource_type, {k: row.get(k) for k in row}),
        **{column: search_key(" ".join(buckets[w])) for w, column in WEIGHT_COLUMNS.items()},
        "document": orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode(),
        "hidden": bool(row.get("hidden") or False),
        "normalization_version": row["normalization_version"],
        "source_updated_at": row.get("source_updated_at"),
    }
    out["content_hash"] = content_hash(
        {k: out[k] for k in INDEX_COLUMNS if k != "content_hash" and k != "source_updated_at"}
    )
    return out


def publish_hash(normalized_content_hash: str) -> str:
    """What a document is built from: skip the build when neither input nor builder changed."""
    return content_hash({"normalized": normalized_content_hash, "document": DOCUMENT_VERSION})


def document_from_stored(resource_type: str, stored: dict[str, Any]) -> dict[str, Any] | None:
    """A stored normalized row -> its index document, or None when editorially blocked."""
    fields = json_value(stored["fields"])
    if fields.get("blocked"):
        return None
    row = {
        **fields,
        "resource_id": stored["resource_id"],
        "provenance": stored["provenance"],
        "normalization_version": stored["normalization_version"],
        "source_updated_at": stored["source_updated_at"],
    }
    document = build_document(resource_type, row)
    document["input_hash"] = publish_hash(stored["content_hash"])
    return document
