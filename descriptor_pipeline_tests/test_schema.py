"""The schema is one definition: docs are generated from it, rules exist, Arrow types match."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from descriptor_pipeline.id_ranges import RESOURCE_TYPES, IdRange, ranges_covering
from descriptor_pipeline.rules import RULES
from descriptor_pipeline.schema import fields_of, normalized_arrow_schema
from descriptor_pipeline.schema_doc import render_schema_doc

DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


def test_schema_doc_is_generated_from_the_code() -> None:
    assert DOC.read_text(encoding="utf-8") == render_schema_doc()


def test_every_field_named_in_schema_doc_exists_in_the_code() -> None:
    documented: dict[str, set[str]] = {}
    section = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("## ") and line[3:] in RESOURCE_TYPES:
            section = line[3:]
        elif section and (m := re.match(r"\| `([a-z_]+)` \|", line)):
            documented.setdefault(section, set()).add(m.group(1))
    for resource_type in RESOURCE_TYPES:
        assert documented[resource_type] == {f.name for f in fields_of(resource_type)}


@pytest.mark.parametrize("resource_type", RESOURCE_TYPES)
def test_fields_name_existing_rules_and_map_to_arrow(resource_type: str) -> None:
    schema = normalized_arrow_schema(resource_type)
    for spec in fields_of(resource_type):
        assert all(rule in RULES for rule in spec.rules), spec
        assert spec.sources, spec
        expected = pa.list_(pa.string()) if spec.kind == "text_list" else None
        if expected is not None:
            assert schema.field(spec.name).type == expected
    for column in ("resource_id", "provenance", "normalization_version", "content_hash"):
        assert column in schema.names


def test_id_ranges_sort_parse_and_grow_by_appending() -> None:
    ranges = ranges_covering(25_000, 10_000)
    assert [r.key for r in ranges] == [
        "000000000-000009999",
        "000010000-000019999",
        "000020000-000029999",
    ]
    assert sorted(r.key for r in ranges) == [r.key for r in ranges]
    assert IdRange.parse("000010000-000019999") == IdRange(10_000, 19_999)
    assert ranges_covering(35_000, 10_000)[:3] == ranges
    for bad in ("1,2", "abc", "20-10"):
        with pytest.raises(ValueError):
            IdRange.parse(bad)
