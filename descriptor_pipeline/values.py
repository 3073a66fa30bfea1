"""What counts as a missing value, plain Python values out of pandas and numpy, and text and
timestamps as the catalog reader hands them on.

Rows cross pandas on their way between the catalog, the stage tables and the quality suites;
None, pd.NA and NaN must mean the same "no value" everywhere, or a NaN is stored as text,
hashed as a value or counted as present. One definition, used by every layer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pandas as pd


def is_missing(value: Any) -> bool:
    """None, pandas' NA or a float NaN (numpy's included): no value at all."""
    return value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value))


def plain(value: Any) -> Any:
    """`value` as JSON-ready Python: missing -> None, numpy scalars and arrays -> Python."""
    if is_missing(value):
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def json_value(value: Any) -> Any:
    """A JSON column as Python: PostgreSQL's JSONB arrives decoded, SQLite's text does not."""
    return value if isinstance(value, dict) else orjson.loads(value)


def is_utf8(text: str) -> bool:
    """False for text holding lone surrogates, which no UTF-8 database or JSON file accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def iso_timestamp(value: Any) -> str | None:
    """A timestamp as ISO 8601; text that does not parse is passed on as it is, for the raw
    stage to quarantine (`timestamp:updated_at`)."""
    if is_missing(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text
