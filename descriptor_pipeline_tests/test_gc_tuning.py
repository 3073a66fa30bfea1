"""The run process's collector settings: applied by the resource, once per process."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import dagster as dg
import pytest

from descriptor_pipeline import gc_tuning
from descriptor_pipeline.defs.resources import PipelineSettings


def _untuned() -> None:
    """This process as if no run had tuned it (earlier tests in the same worker may have)."""
    gc.unfreeze()
    gc_tuning._frozen.clear()
    gc_tuning._tuned = False


@pytest.fixture
def restored() -> Iterator[None]:
    before = gc.get_threshold()
    _untuned()
    yield
    gc.set_threshold(*before)
    _untuned()


def test_the_resource_raises_the_threshold_and_freezes_the_loaded_code_once(restored: None) -> None:
    with dg.build_resources({"settings": PipelineSettings(gc_young_threshold=12_345)}):
        assert gc.get_threshold()[0] == 12_345
        frozen = gc.get_freeze_count()
        assert frozen > 0  # what the test process had loaded
    rows = [[i] for i in range(1000)]  # a run's rows, alive
    gc_tuning.freeze_once("code")  # a second run in the same process freezes nothing new
    assert gc.get_freeze_count() < frozen + len(rows)
    before = gc.get_freeze_count()
    gc_tuning.freeze_once("great_expectations")  # the first check's import: frozen once
    assert gc.get_freeze_count() >= before + len(rows)


def test_zero_keeps_pythons_defaults_and_freezes_nothing(restored: None) -> None:
    gc.set_threshold(700, 10, 10)
    before = gc.get_threshold()
    with dg.build_resources({"settings": PipelineSettings(gc_young_threshold=0)}):
        assert gc.get_threshold() == before
    gc_tuning.freeze_once("great_expectations")
    assert gc.get_freeze_count() == 0
