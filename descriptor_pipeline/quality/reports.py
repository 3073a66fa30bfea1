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

from descriptor_pipeline.quality import site
from descriptor_pipeline.quality.gx_import import import_great_expectations
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
    for folder in root.iterdir():  # `_static`, `_suites`: the site's own folders stay
        if folder.name.startswith("_"):
            continue
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
    asset: str = "",
) -> Path:
    """Render one validation as a static GX Data Docs page: `<root>/<run>/<partition>/<suite>.html`.

    GX's own renderer and page view, so the page looks like any Data Docs site; one file per
    validation keeps runs from overwriting each other and needs no docs-site configuration.
    The page names the Dagster run, the asset and the partition, loads its styling from the
    folder itself (`site`), and its Home and suite links work; run folders older than
    `keep_days` are pruned first.
    """
    import_great_expectations()
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    root = root or data_docs_root()
    prune_data_docs(root, keep_days)
    site.install_static(root)
    folder = root / _safe(run_id) / _safe(partition_key)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_safe(result.suite)}.html"
    gx_result = result.gx_result
    for item in gx_result.results:  # GX's renderer refuses numpy scalars
        if item.result and hasattr(item.result.get("observed_value"), "item"):
            item.result["observed_value"] = item.result["observed_value"].item()
    gx_result.meta["run_id"] = RunIdentifier(run_name=f"dagster run {run_id}")
    gx_result.meta["batch_spec"] = {"data_asset_name": f"{asset} {partition_key}".strip()}
    suite_page = _render_suite(root, gx_result.suite_name)
    try:
        page = DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(gx_result))
        page = site.localize(page, "../../", suite_page)
    except Exception as exc:  # a renderer bug must not fail the check: keep a plain page
        rows = "".join(
            f"<tr><td>{html.escape(str(r['expectation']))}</td><td>{r['severity']}</td>"
            f"<td>{r['passed']}</td><td>{html.escape(str(r['failing_examples']))}</td></tr>"
            for r in result.summary_rows()
        )
        page = (
            f"<html><body><p>GX renderer failed: {html.escape(repr(exc))}</p><table>{rows}</table>"
        )
    site.write_atomically(path, page)
    site.write_home(root)
    return path


def _render_suite(root: Path, suite_name: str) -> str | None:
    """The suite's own page (its expectations), once per suite: the page the validation's
    suite link opens. None when GX cannot render it (the link then stays as GX made it)."""
    import_great_expectations()
    from great_expectations.render.renderer import ExpectationSuitePageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    from descriptor_pipeline.quality.suites import registered_suite

    name = f"{_safe(suite_name)}.html"
    path = root / site.SUITES_FOLDER / name
    if path.exists():
        return name
    try:
        page = DefaultJinjaPageView().render(
            ExpectationSuitePageRenderer().render(registered_suite(suite_name))
        )
    except Exception:  # the validation page matters; its suite page is a convenience
        return None
    site.write_atomically(path, site.localize(page, "../"))
    return name
