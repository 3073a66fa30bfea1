"""GX imported without `scipy.stats` and `altair`: a checked partition run never loads them, and
an expectation that does use them still validates (each in a fresh interpreter, since this
test process may have imported both already)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from descriptor_pipeline.quality.gx_import import DeferredModule, defer_import

REPO = Path(__file__).resolve().parents[1]

HEAVY = ["scipy.stats._stats_py", "altair.vegalite"]  # what the two real imports pull in

CHECKED_RUN = """
import json, sys
import dagster as dg
from descriptor_pipeline.demo.seed import seed_catalog
from descriptor_pipeline_tests.conftest import Deployment
tmp = sys.argv[1]
with dg.instance_for_test() as instance:
    dep = Deployment(f"sqlite:///{tmp}/catalog.sqlite", f"sqlite:///{tmp}/index.sqlite", instance)
    seed_catalog(dep.catalog.engine, dep.catalog.config)
    result = dep.materialize(dep.register()[0])
    checks = result.get_asset_check_evaluations()
print(json.dumps({
    "success": result.success,
    "checks": len(checks),
    "checks_passed": all(c.passed for c in checks),
    "gx": "great_expectations" in sys.modules,
    "stand_in": type(sys.modules["scipy.stats"]).__name__,
    "loaded": [m for m in HEAVY if m in sys.modules],
}))
"""

KL_DIVERGENCE = """
import json, sys
import pandas as pd
from descriptor_pipeline.quality.gx_import import import_great_expectations
gx = import_great_expectations()
before = [m for m in HEAVY if m in sys.modules]
context = gx.get_context(mode="ephemeral")
context.variables.progress_bars = {"globally": False}
batches = context.data_sources.add_pandas("p").add_dataframe_asset("a")
batches = batches.add_batch_definition_whole_dataframe("w")
expected = {"values": [1, 2, 3], "weights": [1 / 6, 2 / 6, 3 / 6]}
results = [
    batches.get_batch(batch_parameters={"dataframe": pd.DataFrame({"x": column})}).validate(
        gx.expectations.ExpectColumnKLDivergenceToBeLessThan(
            column="x", threshold=0.1, partition_object=expected
        )
    )
    for column in ([1, 2, 2, 3, 3, 3], [1, 1, 1, 1, 2, 3])  # as expected; skewed to 1
]
after_validation = [m for m in HEAVY if m in sys.modules]
import altair
from scipy import stats
print(json.dumps({
    "before": before,
    "success": [r.success for r in results],
    "raised": [r.exception_info.get("raised_exception") for r in results],
    "observed": [r.result["observed_value"] for r in results],
    "after_validation": after_validation,
    "chart": type(altair.Chart()).__name__,
    "after": [m for m in HEAVY if m in sys.modules],
    "entropy": stats.entropy([0.5, 0.5], [0.5, 0.5]),
}))
"""


def _run(script: str, *args: str) -> dict[str, object]:
    code = f"HEAVY = {HEAVY!r}\n{script}"
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,  # descriptor_pipeline_tests imports from the checkout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_checked_run_never_loads_the_deferred_modules(tmp_path: Path) -> None:
    out = _run(CHECKED_RUN, str(tmp_path))
    assert out["success"] and out["checks"] and out["checks_passed"]
    assert out["gx"]  # the checks ran GX for real
    assert out["stand_in"] == DeferredModule.__name__
    assert out["loaded"] == []


def test_an_expectation_that_needs_them_loads_them_on_use() -> None:
    out = _run(KL_DIVERGENCE)
    assert out["before"] == []
    # KL(observed || expected) of the skewed column, by hand: 4/6 of the rows are 1s
    skewed = (4 / 6) * math.log(4) + (1 / 6) * math.log(0.5) + (1 / 6) * math.log(1 / 3)
    assert out["raised"] == [False, False], out  # GX computed both, with the real scipy
    assert out["success"] == [True, False]
    assert out["observed"][0] == pytest.approx(0.0, abs=1e-12)
    assert out["observed"][1] == pytest.approx(skewed)
    assert out["after_validation"] == ["scipy.stats._stats_py"]  # KL divergence: scipy.stats
    assert out["chart"] == "Chart"  # altair's first attribute read imports it
    assert sorted(out["after"]) == sorted(HEAVY)
    assert out["entropy"] == 0.0


def test_an_imported_module_is_left_as_it_is() -> None:
    assert defer_import("json") is False
    assert not isinstance(sys.modules["json"], DeferredModule)
    assert defer_import("no_such_module_here") is False
    assert defer_import("no_such_package_here.stats") is False


def test_a_stand_in_loads_on_first_read_and_keeps_working() -> None:
    """`calendar` stands in for a deferred module: cheap, stdlib, not imported by this test."""
    out = _run(
        """
import json, sys
from descriptor_pipeline.quality.gx_import import DeferredModule, defer_import
sys.modules.pop("calendar", None)
deferred = defer_import("calendar")
stand_in = sys.modules["calendar"]
import calendar as bound  # an import statement returns the stand-in, unexecuted
unexecuted = isinstance(bound, DeferredModule) and "monthrange" not in vars(bound)
first = bound.monthrange(2024, 2)  # the first read imports the real module
print(json.dumps({
    "deferred": deferred,
    "unexecuted": unexecuted,
    "first": first,
    "real_in_sys_modules": not isinstance(sys.modules["calendar"], DeferredModule),
    "same_function": bound.isleap is sys.modules["calendar"].isleap,
    "dir": "monthrange" in dir(stand_in),
}))
"""
    )
    assert out == {
        "deferred": True,
        "unexecuted": True,
        "first": [3, 29],
        "real_in_sys_modules": True,
        "same_function": True,
        "dir": True,
    }


def test_gx_no_longer_fingerprints_each_batch_and_the_knob_still_exists() -> None:
    """`skip_batch_fingerprint` turned GX's threshold to 0: a validated frame's batch markers
    carry no `pandas_data_fingerprint`. With GX's own threshold back, they do (so this test
    fails if a GX upgrade moves the fingerprint elsewhere)."""
    import pandas as pd
    from great_expectations.execution_engine import pandas_execution_engine as engine

    from descriptor_pipeline.quality.gx_import import import_great_expectations

    gx = import_great_expectations()
    assert engine.HASH_THRESHOLD == 0
    context = gx.get_context(mode="ephemeral")
    batches = context.data_sources.add_pandas("fingerprint").add_dataframe_asset("a")
    batches = batches.add_batch_definition_whole_dataframe("w")

    def markers() -> dict[str, object]:
        batch = batches.get_batch(batch_parameters={"dataframe": pd.DataFrame({"x": [1, 2]})})
        return dict(batch.batch_markers)

    assert "ge_load_time" in markers() and "pandas_data_fingerprint" not in markers()
    engine.HASH_THRESHOLD = 1e9  # GX's own default
    try:
        assert "pandas_data_fingerprint" in markers()
    finally:
        engine.HASH_THRESHOLD = 0
