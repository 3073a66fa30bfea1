"""The README's "In the Dagster UI" walkthrough, clicked through in a real browser.

A real `dagster-webserver` and `dagster-daemon run` on a temp instance with the demo catalog, the
Data Docs folder served over HTTP as `scripts/ui.sh` serves it, and Debian's Chromium driven by
Playwright. The album table is away (a catalog migration under way), so the album backfill fails
for real; one album's `updated_at` is in the future, so `raw_warnings` warns and renders a report,
which is read with every request to a host other than 127.0.0.1 refused: its styling is the
folder's own copy. Last, the README's "Reindex an id now": the job's launchpad, one partition, a
`descriptor/ids` tag, one run.
Each step leaves a screenshot in `artifacts/ui/`. The process helpers are the GraphQL e2e test's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from descriptor_pipeline.catalog import CatalogSource
from descriptor_pipeline.refresh.tags import TAG_IDS
from descriptor_pipeline_tests.conftest import IN_CI, REPO, seeded_demo
from descriptor_pipeline_tests.processes import stop, wait_for
from descriptor_pipeline_tests.test_webserver_e2e import (
    ALBUM_TABLE,
    ALBUM_TABLE_AWAY,
    BIN,
    RUN,
    GraphQL,
    expected_documents,
    free_port,
    published_ids,
    rename_table,
    start,
)

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "artifacts" / "ui"
RANGE_SIZE = 1000  # the demo's largest id is 2401: three ranges, so one type is 3 partitions
UI_TIMEOUT_MS = 30_000  # any click or text the UI should show at once
RUN_TIMEOUT_S = 120  # a launched run: daemon pickup, a process, the code location, the steps
ASSETS = ("raw_descriptors", "normalized_descriptors", "descriptor_index")
SCOPED_ID = 1234  # a demo artist in the second id range, reindexed alone from the launchpad


def node_label(name: str) -> re.Pattern[str]:
    """An asset's name on a graph node: whole, or cut in the middle as Dagster draws a node
    zoomed out to fit its panel ("norma…_descriptors" on the job page, in one clean-clone run
    of four on 2026-12-03: a 30 s wait for the whole name failed)."""
    whole, cut = re.escape(name), rf"{re.escape(name[:3])}\S*…\S*{re.escape(name[-3:])}"
    return re.compile(rf"^(?:{whole}|{cut})$")


@pytest.fixture
def playwright_chromium() -> Iterator[Any]:
    """Playwright driving Debian's Chromium, or a loud skip (a failure when CI=true)."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} not found (apt-get install -y chromium; .ci/run does it)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            problem = f"playwright not importable ({exc}): install the dev extra"
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true requires the browser test. {problem}")
        warnings.warn(f"SKIPPING THE BROWSER TEST. {problem}", stacklevel=1)
        pytest.skip(f"!!! BROWSER TEST SKIPPED: {problem}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# what a page's styling is made of, read in the page
STYLING_PROBE = """() => ({
  sheets: [...document.styleSheets].map(s => s.href).filter(Boolean),
  bodyFont: getComputedStyle(document.body).fontFamily,
  iconFont: getComputedStyle(document.querySelector('.fas'), '::before').fontFamily,
  bootstrapTable: typeof (window.jQuery && jQuery.fn.bootstrapTable),
})"""


def break_catalog(source: CatalogSource) -> None:
    """One album updated in the future (raw_warnings warns: a report page), then the album table
    renamed away, so reading the album partitions fails on every attempt."""
    with source.engine.begin() as conn:
        conn.execute(
            sa.text(
                f"UPDATE {ALBUM_TABLE} SET updated_at = '2099-01-01 00:00:00' "
                f"WHERE id = (SELECT min(id) FROM {ALBUM_TABLE})"
            )
        )
    rename_table(source, ALBUM_TABLE, ALBUM_TABLE_AWAY)


def wait_for_text(page: Any, pattern: str, timeout_s: float, reload_every_s: float = 10) -> str:
    """The page's text once it matches `pattern`, reloading now and then (some views poll
    slowly); fail with what the page showed last."""
    deadline = time.monotonic() + timeout_s
    reloaded = time.monotonic()
    text = ""
    while time.monotonic() < deadline:
        text = page.inner_text("body")
        if re.search(pattern, text):
            return text
        if time.monotonic() - reloaded > reload_every_s:
            page.reload()
            reloaded = time.monotonic()
        page.wait_for_timeout(1000)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for /{pattern}/ on {page.url}:\n{text}")


def test_readme_ui_walkthrough_in_a_browser(
    home: Path, monkeypatch: pytest.MonkeyPatch, playwright_chromium: Any
) -> None:
    started = time.monotonic()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    data = home / "data"
    (data / "data_docs").mkdir(parents=True)
    docs_port, port = free_port(), free_port()
    docs_url = f"http://127.0.0.1:{docs_port}"
    monkeypatch.setenv("DESCRIPTOR_PIPELINE_DATA", str(data))
    monkeypatch.setenv("DESCRIPTOR_DATA_DOCS_URL", docs_url)

    demo = seeded_demo(RANGE_SIZE)
    source, store, ranges = demo.source, demo.store, demo.ranges
    album_keys = [f"{r.key}|album" for r in ranges]
    assert len(album_keys) == 3
    # the partition whose id range holds the id
    scoped_key = next(f"{r.key}|artist" for r in ranges if r.first <= SCOPED_ID <= r.last)
    break_catalog(source)

    gql = GraphQL(port)
    workspace = str(home / "workspace.yaml")
    logs = [home / "webserver.log", home / "daemon.log", home / "data_docs.log"]
    serve_docs = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]
    webserver = [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port)]
    processes: list[subprocess.Popen[bytes]] = [
        start([*serve_docs, "--directory", str(data / "data_docs"), str(docs_port)], home, logs[2]),
        start([*webserver, "-w", workspace], home, logs[0]),
        start([str(BIN / "dagster-daemon"), "run", "-w", workspace], home, logs[1]),
    ]
    page: Any = None
    try:
        wait_for("the webserver to load the code location", gql.location_loaded, 90, logs)
        context = playwright_chromium.new_context(viewport={"width": 1400, "height": 1000})
        # offline: only the two local servers (the report's styling is served with it)
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()
        ui = f"http://127.0.0.1:{port}"

        def shot(name: str, target: Any = None) -> None:
            (target or page).screenshot(path=str(ARTIFACTS / name))

        popup = page.get_by_text("Join the Dagster community")

        def dismiss_popup() -> None:
            shot("00-community-popup.png")
            # a DOM click, not a mouse click: the pop-up can come late, under the launch dialog
            # opened meanwhile, where a mouse click on Skip lands on the dialog (seen in CI)
            page.get_by_role("button", name="Skip", exact=True).dispatch_event("click")

        page.add_locator_handler(popup, dismiss_popup)  # shown once, whenever it comes

        # 1. Lineage: the asset graph with the three assets
        page.goto(f"{ui}/asset-groups")
        materialize = page.get_by_role("button", name="Materialize all…")
        materialize.wait_for()
        for name in ASSETS:
            page.get_by_text(name, exact=True).first.wait_for()
        popup.wait_for(state="hidden")
        shot("01-lineage-asset-graph.png")

        # 2. Materialize all… > id_range: All > resource_type: album > Launch backfill
        materialize.click()
        dialog = page.get_by_role("dialog").last
        dialog.get_by_text("Launch runs to materialize 3 assets").wait_for()
        all_ranges = dialog.get_by_role("button", name="All", exact=True).first
        for _ in range(10):  # "All" does nothing until the dialog has loaded the id ranges
            all_ranges.click()
            if dialog.get_by_text("3 partitions selected").count():
                break
            page.wait_for_timeout(1000)
        dialog.get_by_text("Select a partition or create one").last.click()
        page.get_by_role("dialog").nth(1).get_by_text("album", exact=True).first.click()
        page.keyboard.press("Escape")  # closes the value list, not the launch dialog
        dialog.get_by_text("3 partitions", exact=True).first.wait_for()
        shot("02-materialize-one-type.png")
        dialog.get_by_role("button", name="Launch backfill").click()
        toast = page.get_by_text(re.compile(r"Created backfill \w+")).first
        backfill_id = re.findall(r"Created backfill (\w+)", toast.inner_text())[0]

        # 3. Runs > the backfill: its run finishes, failed (the album table is away)
        page.goto(f"{ui}/runs/b/{backfill_id}?tab=runs")
        wait_for_text(page, r"Status\s+Failed", RUN_TIMEOUT_S)
        shot("03-backfill-finished.png")
        page.get_by_role("link", name="View", exact=True).first.click()
        page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
        failed_run_id = page.url.rsplit("/", 1)[-1].split("?")[0]
        wait_for_text(page, f"no such table: {ALBUM_TABLE}", 30)
        shot("04-failed-run.png")

        # 4. the migration is done; Re-execute > From failure on the failed run
        rename_table(source, ALBUM_TABLE_AWAY, ALBUM_TABLE)
        reexecute = page.get_by_role("button", name="Re-execute all (*)")
        reexecute.locator("xpath=following-sibling::span//button").click()
        from_failure = page.get_by_text("From failure", exact=True)
        page.get_by_role("menuitem").filter(has=from_failure).click()
        page.get_by_role("button", name="Confirm").click()  # "Re-execution within backfill"
        page.wait_for_url(lambda url: failed_run_id not in url)
        retry_id = page.url.rsplit("/", 1)[-1].split("?")[0]
        wait_for_text(page, r"\bSuccess\b", RUN_TIMEOUT_S)
        shot("05-reexecuted-from-failure.png")

        # 5. the check's result on the asset's Checks tab, and its quality report over HTTP
        page.goto(f"{ui}/assets/raw_descriptors?view=checks")
        page.get_by_text("raw_warnings", exact=True).first.click()
        page.get_by_text("column_values_to_be_between(source_updated_at)").first.wait_for()
        link = page.locator(f'a[href^="{docs_url}/{retry_id}/"]').first
        href = link.get_attribute("href")
        shot("06-check-result.png")
        with context.expect_page() as opened:
            link.click()
        report = opened.value
        requested: list[str] = []
        report.on("request", lambda request: requested.append(request.url))
        report.reload(wait_until="networkidle")  # every request of a load, seen from the start
        report_text = report.inner_text("body")
        styling = report.evaluate(STYLING_PROBE)
        shot("07-quality-report.png", report)
        report.get_by_role("link", name="Home", exact=True).first.click()
        report.wait_for_load_state("networkidle")
        home_text = report.inner_text("body")
        shot("08-report-home.png", report)
        report.go_back(wait_until="networkidle")
        report.locator('a[href*="_suites/"]').first.click()
        report.wait_for_load_state("networkidle")
        suite_text = report.inner_text("body")
        shot("09-report-suite.png", report)

        # 6. Reindex an id now: Jobs > refresh_descriptors > ▾ next to Materialize all… > Open
        # launchpad; the id's partition, Edit tags > Add custom tag descriptor/ids, Materialize
        page.goto(f"{ui}/locations/descriptor_pipeline/jobs/refresh_descriptors")
        for name in ASSETS[:2]:  # the job's graph has loaded (the menu acts on its assets)
            page.get_by_text(node_label(name)).first.wait_for()
        job_materialize = page.get_by_role("button", name="Materialize all…")
        job_materialize.locator("xpath=../following-sibling::span//button").click()
        page.get_by_role("menuitem", name="Open launchpad").click()
        launchpad = page.get_by_role("dialog").filter(has_text="Launchpad (configure assets)")
        partition = launchpad.get_by_placeholder("Partition")
        partition.click()
        partition.fill(scoped_key)
        page.get_by_role("menuitem", name=scoped_key, exact=True).click()
        launchpad.get_by_text(f"partition: {scoped_key}").wait_for()
        shot("10-launchpad-partition.png")
        launchpad.get_by_role("button", name="Edit tags").click()
        edit_tags = page.get_by_role("dialog").filter(has_text="Add tags to run")
        edit_tags.get_by_role("button", name="Add custom tag").click()
        edit_tags.get_by_placeholder("Tag Key").last.fill(TAG_IDS)
        edit_tags.get_by_placeholder("Tag Value").last.fill(str(SCOPED_ID))
        shot("11-launchpad-edit-tags.png")
        edit_tags.get_by_role("button", name="Apply").click()
        launchpad.get_by_text(f"{TAG_IDS}: {SCOPED_ID}").wait_for()
        shot("12-launchpad-tagged.png")
        launchpad.get_by_role("button").filter(has_text=re.compile(r"^Materialize$")).click()
        page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))  # the new run's page
        scoped_run_id = page.url.rsplit("/", 1)[-1].split("?")[0]
        # a success; its index_suite fails (not blocking): the range's other artists aren't indexed
        wait_for_text(page, r"\bSuccess\b", RUN_TIMEOUT_S)
        shot("13-launchpad-run.png")
        context.close()
        retry = gql(RUN, runId=retry_id)["runOrError"]
    except Exception:
        if page is not None:  # what the browser showed when the step failed
            shot("failed-step.png")
            print("DIALOGS", page.get_by_role("dialog").all_inner_texts())
        raise
    finally:
        for process in reversed(processes):
            stop(process)

    assert href and href.startswith(f"{docs_url}/{retry_id}/") and href.endswith(".html")
    assert "Expectation Validation Result" in report_text
    assert "source_updated_at" in report_text and "Failed" in report_text
    # named: the Dagster run, the asset and its album partitions, not "__none__" / "None"
    assert f"dagster run {retry_id}" in report_text
    assert re.search(r"Data asset: raw_descriptors \S*album", report_text), report_text[:800]
    assert "__none__" not in report_text and "Data asset: None" not in report_text
    # styled from the served folder: every request went to it, Bootstrap's and Font Awesome's
    # rules apply, and jQuery with bootstrap-table runs
    assert requested and all(u.startswith(f"{docs_url}/") for u in requested), requested
    assert styling["sheets"] and all(
        h.startswith(f"{docs_url}/_static/") for h in styling["sheets"]
    )
    assert "Segoe UI" in styling["bodyFont"]  # Bootstrap 4's font stack, not the browser's
    assert styling["iconFont"].strip('"') == "Font Awesome 6 Free"
    assert styling["bootstrapTable"] == "function"
    assert "Quality reports" in home_text and retry_id in home_text
    assert "Expectation Suite" in suite_text and "source_updated_at" in suite_text
    assert (retry["status"], retry["parentRunId"]) == ("SUCCESS", failed_run_id)
    published = published_ids(store, "album")
    expected = set().union(*(expected_documents(source, store, key) for key in album_keys))
    assert expected and published == expected
    # one run from the launchpad, for the picked partition and the tagged id only
    with dg.DagsterInstance.get() as instance:
        scoped = instance.get_run_by_id(scoped_run_id)
        tagged = instance.get_runs(filters=dg.RunsFilter(tags={TAG_IDS: str(SCOPED_ID)}))
    assert scoped is not None and scoped.status == dg.DagsterRunStatus.SUCCESS, scoped
    assert [r.run_id for r in tagged] == [scoped_run_id]
    id_range, _, resource_type = scoped_key.partition("|")
    assert scoped.tags["dagster/partition"] == scoped_key
    assert scoped.tags["dagster/partition/id_range"] == id_range
    assert scoped.tags["dagster/partition/resource_type"] == resource_type == "artist"
    assert published_ids(store, "artist") == {SCOPED_ID}  # no other artist was read or written
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert len(shots) >= 13, shots
    print(f"\nbrowser walkthrough: {time.monotonic() - started:.1f}s; screenshots: {shots}")
