"""What a check shows an operator: the quarantine summary and GX Data Docs pages."""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from descriptor_pipeline.quality.results import MAX_EXAMPLES, SuiteResult, short

# ---------------------------------------------------------------- quarantine summary


@dataclass(frozen=True)
class QuarantineSummary:
    total: int  # resources not published (raw and normalize stages)
    share: float
    by_stage_rule: dict[str, int]
    examples: tuple[str, ...]
    fields_dropped: int = 0  # resources published without one or more bad fields


def summarize_quarantine(rows: pd.DataFrame, partition_rows: int) -> QuarantineSummary:
    """Count a partition's quarantined rows per stage and rule, with a few examples."""
    fields_dropped = int((rows["stage"] == "field").sum()) if len(rows) else 0
    total = len(rows) - fields_dropped
    counts = (
        rows.groupby(["stage", "rule"]).size().to_dict() if len(rows) else {}  # type: ignore[union-attr]
    )
    examples = tuple(
        f"{r.resource_type}:{r.resource_id} [{r.stage}] {r.rule}: {short(r.reason, 100)}"
        for r in rows.head(MAX_EXAMPLES).itertuples()
    )
    return QuarantineSummary(
        total,
        round(total / partition_rows, 4) if partition_rows else float(total > 0),
        {f"{stage}/{rule}": int(n) for (stage, rule), n in counts.items()},
        examples,
        fields_dropped,
    )


# ---------------------------------------------------------------- Data Docs


def data_docs_root(explicit: str | None = None) -> Path:
    """Where Data Docs land: the configured folder, else `$DESCRIPTOR_PIPELINE_DATA/data_docs`
    (the folder the scripts keep the embedded stores in), else the system temp dir."""
    if explicit:
        return Path(explicit)
    data = os.environ.get("DESCRIPTOR_PIPELINE_DATA")
    if data:
        return Path(data) / "data_docs"
    return Path(tempfile.gettempdir()) / "descriptor_pipeline" / "data_docs"


def data_docs_url(page: Path, root: Path, base_url: str = "") -> str:
    """A page's link: `<base_url>/<run>/<partition>/<suite>.html` when the folder is served over
    HTTP (a browser refuses file:// links from an http page), else its file:// URL."""
    if not base_url:
        return page.resolve().as_uri()
    relative = page.resolve().relative_to(root.resolve())
    return f"{base_url.rstrip('/')}/{quote(relative.as_posix())}"


def prune_data_docs(root: Path, keep_days: int, now: float | None = None) -> list[Path]:
    """Delete the run folders under `root` not written to for `keep_days` days (0 keeps all),
    so a long-lived deployment's Data Docs folder does not grow without bound."""
    if keep_days <= 0 or not root.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - keep_days * 86_400
    removed = []
    for folder in root.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part)


def render_data_docs(
    result: SuiteResult,
    run_id: str,
    partition_key: str,
    root: Path | None = None,
    keep_days: int = 0,
) -> Path:
    """Render one validation as a static GX Data Docs page: `<root>/<run>/<partition>/<suite>.html`.

    GX's own renderer and page view, so the page looks like any Data Docs site; one file per
    validation keeps runs from overwriting each other and needs no docs-site configuration.
    Run folders older than `keep_days` are pruned first.
    """
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    root = root or data_docs_root()
    prune_data_docs(root, keep_days)
    folder = root / _safe(run_id) / _safe(partition_key)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_safe(result.suite)}.html"
    for item in result.gx_result.results:  # GX's renderer refuses numpy scalars
        if item.result and hasattr(item.result.get("observed_value"), "item"):
            item.result["observed_value"] = item.result["observed_value"].item()
    try:
        page = DefaultJinjaPageView().render(
            ValidationResultsPageRenderer().render(result.gx_result)
        )
    except Exception as exc:  # a renderer bug must not fail the check: keep a plain page
        rows = "".join(
            f"<tr><td>{html.escape(str(r['expectation']))}</td><td>{r['severity']}</td>"
            f"<td>{r['passed']}</td><td>{html.escape(str(r['failing_examples']))}</td></tr>"
            for r in result.summary_rows()
        )
        page = (
            f"<html><body><p>GX renderer failed: {html.escape(repr(exc))}</p><table>{rows}</table>"
        )
    path.write_text(page, encoding="utf-8")
    return path
