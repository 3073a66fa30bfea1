"""Data quality: GX Core suites per layer and resource type, drift profiles, Data Docs.

Row-level problems (malformed JSON, wrong types, oversized or missing names) are caught by the
stages' rules and quarantined row by row. These suites guard what the rules cannot see: invariants
of the stored tables (a row that bypassed or predates a rule) and distributions over a whole
partition (vocabulary share, genre coverage, a source that stopped sending a field).

Pure of Dagster and of the stages: `defs/checks.py` hands a partition's rows to these modules; a
CLI or a benchmark can call them the same way.

- `results`: thresholds and the plain-data suite results
- `frames`: the rows' own columns each layer's suite checks, and `LayerValidator` collecting them
- `suites`: the GX context, the expectations, `validate`
- `drift`: partition profiles and their comparison with a baseline
- `reports`: the quarantine summary and Data Docs pages
- `site`: the Data Docs folder as an offline static site (vendored CSS/JS in `static/`)

The names below are re-exported for callers that read `quality.<name>`; new code imports from
the module that defines the name.
"""

from descriptor_pipeline.quality.drift import Drift, compare_profiles, profile_of
from descriptor_pipeline.quality.frames import (
    LayerValidator,
    index_frame,
    normalized_facts,
    raw_frame,
)
from descriptor_pipeline.quality.reports import render_data_docs, summarize_quarantine
from descriptor_pipeline.quality.results import ExpectationSummary, Layer, SuiteResult, Thresholds
from descriptor_pipeline.quality.suites import suite_for, validate

__all__ = [
    "Drift",
    "ExpectationSummary",
    "Layer",
    "LayerValidator",
    "SuiteResult",
    "Thresholds",
    "compare_profiles",
    "index_frame",
    "normalized_facts",
    "profile_of",
    "raw_frame",
    "render_data_docs",
    "suite_for",
    "summarize_quarantine",
    "validate",
]
