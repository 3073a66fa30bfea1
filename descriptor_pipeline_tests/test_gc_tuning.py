"""The run process's collector settings: applied by the `settings` resource in runs only, the
loaded code frozen once per process, one collection when a later run starts, 0 restores."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest

from descriptor_pipeline import gc_tuning
from descriptor_pipeline.defs.resources import PipelineSettings


def _untuned() -> None:
    """This process as if no run had tuned it (earlier tests in the same worker may have)."""
    gc_tuning.tune(gc_tuning.LEAVE_AS_IS)
    gc.unfreeze()
    gc_tuning._frozen.clear()


@pytest.fixture
def restored() -> Iterator[tuple[int, int, int]]:
    _untuned()
    before = gc.get_threshold()
    yield before
    _untuned()
    gc.set_threshold(*before)


@dg.asset
def _uses_settings(settings: PipelineSettings) -> None:
    """A step that holds the resource, as the three assets do."""


def _collections_during(run: Any) -> list[int]:
    """The generations collected while `run()` ran."""
    seen: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            seen.append(info["generation"])

    gc.callbacks.append(record)
    try:
        run()
    finally:
        gc.callbacks.remove(record)
    return seen


def test_a_run_tunes_once_and_a_later_run_collects_first(restored: tuple[int, int, int]) -> None:
    with dg.build_resources({"settings": PipelineSettings(gc_young_threshold=12_345)}):
        assert gc.get_threshold() == restored  # no run (a schedule tick): nothing changes
    resources = {"settings": PipelineSettings(gc_young_threshold=12_345)}
    first = _collections_during(lambda: dg.materialize([_uses_settings], resources=resources))
    assert gc.get_threshold() == (12_345, 20, 100)
    assert 2 not in first  # the first run freezes (after a young collection), no full one
    frozen = gc.get_freeze_count()
    assert frozen > 0  # what the test process had loaded
    rows = [[i] for i in range(1000)]  # a later run's rows, alive
    later = _collections_during(lambda: dg.materialize([_uses_settings], resources=resources))
    assert 2 in later  # the cycles earlier runs left, freed before this run's work
    assert gc.get_freeze_count() < frozen + len(rows)  # the code is frozen once per process
    before = gc.get_freeze_count()
    gc_tuning.freeze_once("great_expectations")  # a check's first import: frozen once
    assert gc.get_freeze_count() >= before + len(rows)


def test_zero_puts_back_the_interpreter_s_thresholds(restored: tuple[int, int, int]) -> None:
    gc_tuning.tune(12_345)
    assert gc.get_threshold()[0] == 12_345
    gc_tuning.tune(gc_tuning.LEAVE_AS_IS)  # a run that asks for 0 in a tuned worker
    assert gc.get_threshold() == restored
    gc.unfreeze()
    gc_tuning.freeze_once("great_expectations")  # untuned: no freeze
    assert gc.get_freeze_count() == 0


def test_a_threshold_below_python_s_default_is_refused(restored: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match="at least 700"):
        gc_tuning.tune(5)
    assert gc.get_threshold() == restored


def test_sensors_built_without_a_with_block_can_use_the_resource() -> None:
    """A teardown hook would make `settings` a generator resource, which a sensor context
    built outside `with build_sensor_context(...)` refuses (the benchmark's and users' tests)."""
    context = dg.build_sensor_context(resources={"settings": PipelineSettings()})
    assert context.resources.settings.chunk_size > 0
