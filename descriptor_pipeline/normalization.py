"""The per-row and per-partition normalizer (pure: no I/O, no Dagster): every canonical field
taken from its sources in precedence order, run through its rules (`rules.py`), with provenance.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from descriptor_pipeline.rejections import RejectedValue, Rejection
from descriptor_pipeline.rules import (
    NORMALIZATION_VERSION,
    RULES,
    NormalizationContext,
)
from descriptor_pipeline.schema import (
    FieldSpec,
    Source,
    SourcePath,
    fields_of,
)
from descriptor_pipeline.values import is_missing

# ---------------------------------------------------------------- extraction


@functools.lru_cache(maxsize=1024)
def _step(path: str) -> tuple[str, bool, str]:
    """(key, maps over a list, rest of the path): split once per path, not once per row."""
    head, _, rest = path.partition(".")
    is_list = head.endswith("[]")
    return (head[:-2] if is_list else head), is_list, rest


def extract(document: Any, path: str) -> Any:
    """Follow a dotted path; `key[]` maps the rest of the path over a list."""
    if document is None:
        return None
    key, is_list, rest = _step(path)
    value = document.get(key) if isinstance(document, dict) else None
    if key == "" and is_list:  # path "[]": the document itself is the list
        value = document
    if value is None:
        return None
    if is_list:
        if not isinstance(value, list):
            raise RejectedValue(
                f"type:{path}", f"{path}: expected a list, got {type(value).__name__}", value
            )
        items = [extract(v, rest) if rest else v for v in value]
        return [i for i in items if i is not None]
    return extract(value, rest) if rest else value


def _as_text(value: Any, where: SourcePath) -> str | None:
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, dict | list)):
        raise RejectedValue(
            f"type:{where}", f"{where}: expected text, got {type(value).__name__}", value
        )
    return str(value)  # numbers are legitimate text (a band called 311)


@dataclass
class RowSources:
    """The parsed source documents of one raw row."""

    documents: dict[Source, Any]

    def lookup(self, where: SourcePath) -> Any:
        try:
            return extract(self.documents.get(where.source), where.path)
        except RejectedValue as exc:  # name the whole path, not the tail that failed
            raise RejectedValue(
                f"type:{where}", f"{where}: {exc.reason.split(': ', 1)[-1]}", exc.raw_value
            ) from None


@dataclass(frozen=True)
class FieldPlan:
    """A field's rules looked up once per chunk, not once per row and field (`RULES` is read
    at each call of `plans`, so a rule bump takes effect at once)."""

    spec: FieldSpec
    tags: list[str]  # provenance: rule@version in the spec's order
    every: tuple[Callable[..., Any], ...]  # all rules (an int field applies each to the value)
    text: tuple[Callable[..., Any], ...]  # the rules for one text value
    lists: tuple[Callable[..., Any], ...]  # the rules over a list field's collected values


def plans(specs: Sequence[FieldSpec]) -> list[FieldPlan]:
    out = []
    for spec in specs:
        rules = [RULES[name] for name in spec.rules]
        out.append(
            FieldPlan(
                spec,
                [rule.tag for rule in rules],
                tuple(rule.fn for rule in rules),
                tuple(rule.fn for rule in rules if rule.applies_to == "text"),
                tuple(rule.fn for rule in rules if rule.applies_to == "list"),
            )
        )
    return out


def _apply_text_rules(
    value: str, rules: tuple[Callable[..., Any], ...], ctx: NormalizationContext
) -> str:
    for fn in rules:
        value = fn(value, ctx)
    return value


def _origin(where: SourcePath, rules: list[str]) -> dict[str, Any]:
    """Where a value came from; the source profile too when one put the path there."""
    origin = {"source": where.source.value, "path": str(where), "rules": rules}
    if where.profile:
        origin["profile"] = where.profile
    return origin


def _normalize_field(
    plan: FieldPlan, sources: RowSources, ctx: NormalizationContext
) -> tuple[Any, dict[str, Any] | None]:
    spec, rule_tags = plan.spec, plan.tags
    if spec.kind == "flag":
        for where in spec.sources:
            value = sources.lookup(where)
            if value is not None:
                if not isinstance(value, bool):
                    raise RejectedValue(f"type:{where}", f"{where}: expected true/false", value)
                return value, _origin(where, [])
        return False, None
    if spec.kind == "int":
        for where in spec.sources:
            value = sources.lookup(where)
            if "[]" in where.path:
                value = value[0] if value else None
            if value is None:
                continue
            number = None
            for fn in plan.every:
                number = fn(value, ctx)
            if number is not None:
                return number, _origin(where, rule_tags)
        return None, None
    if spec.kind == "text":
        for where in spec.sources:
            value = sources.lookup(where)
            if "[]" in where.path:  # e.g. links.albums[].name: the first linked row
                value = value[0] if value else None
            text = _as_text(value, where)
            if text is None:
                continue
            text = _apply_text_rules(text, plan.text, ctx)
            if text:
                return text, _origin(where, rule_tags)
        return None, None
    # text_list: union over sources in precedence order, per-value provenance
    collected: list[tuple[str, str]] = []
    for where in spec.sources:
        value = sources.lookup(where)
        if value is None:
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            text = _as_text(item, where)
            if text is None:
                continue
            text = _apply_text_rules(text, plan.text, ctx)
            if text:
                collected.append((text, str(where)))
    for fn in plan.lists:
        collected = fn(collected, ctx)
    if not collected:
        return [], None
    origin: dict[str, Any] = {"from": [o for _, o in collected], "rules": rule_tags}
    used = set(origin["from"])
    profiles = {str(w): w.profile for w in spec.sources if w.profile and str(w) in used}
    if profiles:
        origin["profiles"] = profiles
    return [v for v, _ in collected], origin


def _parse_json(text: Any) -> Any:
    if is_missing(text):
        return None
    return orjson.loads(text) if isinstance(text, str | bytes) else text


def row_sources(row: dict[str, Any]) -> RowSources:
    """The parsed documents of a raw row (JSON text parsed once), keyed by source."""
    return RowSources(
        {
            Source.CUSTOM: _parse_json(row.get("custom_data")),
            Source.CATALOG: {"name": None if is_missing(row.get("name")) else row.get("name")},
            Source.LINKS: _parse_json(row.get("links")),
            Source.ENRICHMENT: _parse_json(row.get("enrichment_data")),
            Source.SPOTIFY: _parse_json(row.get("spotify_data")),
        }
    )


def normalize_row(
    resource_type: str,
    row: dict[str, Any],
    ctx: NormalizationContext,
    field_plans: Sequence[FieldPlan] | None = None,
) -> dict[str, Any]:
    """One raw row -> its canonical fields with provenance. Raises RejectedValue."""
    if field_plans is None:
        field_plans = plans(ctx.fields[resource_type])
    sources = row_sources(row)
    for source in (Source.CUSTOM, Source.ENRICHMENT, Source.SPOTIFY):
        doc = sources.documents[source]
        if doc is not None and not isinstance(doc, dict):
            raise RejectedValue(
                f"type:{source.value}",
                f"{source.value} must be a JSON object, got {type(doc).__name__}",
                doc,
            )
    out: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    dropped: list[tuple[str, RejectedValue]] = []
    for plan in field_plans:
        spec = plan.spec
        try:
            value, origin = _normalize_field(plan, sources, ctx)
        except RejectedValue as exc:
            if spec.name == "name":  # the one field a document cannot do without
                raise
            dropped.append((spec.name, exc))  # the field goes; the resource is still published
            value, origin = EMPTY[spec.kind], None
        out[spec.name] = value
        if origin is not None:
            provenance[spec.name] = origin
    if not out.get("name"):
        raise RejectedValue("required:name", "no usable name in any source", row.get("name"))
    out["provenance"] = provenance
    out["dropped"] = dropped
    return out


# What a dropped field holds: what it holds when no source has a value.
EMPTY: dict[str, Any] = {"text": None, "text_list": [], "int": None, "flag": False}


def _as_stored(value: Any) -> str | None:
    """A rejected value as the quarantine keeps it: text as is, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def dropped_fields(resource_id: int, dropped: list[tuple[str, RejectedValue]]) -> Rejection:
    """One quarantine row (stage `field`) for the fields a published resource lost: the
    first field's rule and value, every field's reason."""
    field, first = dropped[0]
    reason = "; ".join(f"{name}: {exc.reason}" for name, exc in dropped)
    return Rejection(
        resource_id, "field", f"{field}:{first.rule}", reason, _as_stored(first.raw_value)
    )


def content_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def rules_fingerprint(ctx: NormalizationContext) -> str:
    """Everything besides the raw row that a normalized row depends on: the rules' version,
    the genre vocabulary and the source profiles."""
    profiles = f"|{ctx.profiles_fingerprint}" if ctx.profiles_fingerprint else ""
    return f"{NORMALIZATION_VERSION}|{ctx.genre_vocabulary.fingerprint}{profiles}"


def input_hash(raw_hash: str, ctx: NormalizationContext) -> str:
    """What a normalized row was computed from: skip it when none of this changed."""
    return hashlib.sha256(f"{raw_hash}|{rules_fingerprint(ctx)}".encode()).hexdigest()


def normalize_rows(
    resource_type: str, raw: Iterable[dict[str, Any]], ctx: NormalizationContext
) -> tuple[list[dict[str, Any]], list[Rejection]]:
    """Normalize a chunk of raw rows; bad rows become rejections, the rest canonical records
    (the schema's fields as plain values, provenance as JSON text, the content hash). A row
    that lost only some fields is a record AND a rejection of stage `field`.

    Plain dicts in and out: the chunk stays in one shape from the stage table to the stage
    table (a pandas and Arrow round trip here cost 15% of a backfill).
    """
    field_names = [f.name for f in fields_of(resource_type)]
    field_plans = plans(ctx.fields[resource_type])
    rows: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    for row in raw:
        resource_id = int(row["resource_id"])
        try:
            values = normalize_row(resource_type, row, ctx, field_plans)
        except RejectedValue as exc:
            rejections.append(
                Rejection(resource_id, "normalize", exc.rule, exc.reason, _as_stored(exc.raw_value))
            )
            continue
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            rejections.append(Rejection(resource_id, "normalize", "unexpected", repr(exc), None))
            continue
        provenance = values.pop("provenance")
        if values["dropped"]:
            rejections.append(dropped_fields(resource_id, values["dropped"]))
        record = {
            "resource_type": resource_type,
            "resource_id": resource_id,
            "source_updated_at": row.get("source_updated_at"),
            "raw_hash": row["raw_hash"],
            **{name: values[name] for name in field_names},
            "provenance": orjson.dumps(provenance, option=orjson.OPT_SORT_KEYS).decode(),
            "normalization_version": NORMALIZATION_VERSION,
        }
        record["content_hash"] = content_hash(
            {k: record[k] for k in (*field_names, "provenance", "normalization_version")}
        )
        rows.append(record)
    return rows, [r.clipped() for r in rejections]
