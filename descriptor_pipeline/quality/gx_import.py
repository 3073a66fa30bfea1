"""Great Expectations, imported without two modules it loads for expectations this project
never runs, and without the fingerprint it computes of every pandas batch.

`import great_expectations` registers every core expectation. Some of them (KL divergence, the
Kolmogorov-Smirnov p-value metrics) import `scipy.stats`, and KL divergence also `altair`, at
module level, and only call them inside their methods. Measured on this project's machines, those
two are about 0.6 s and 77-85 MiB of GX's import and context (1.84-1.99 s, 340 MiB of process
peak before; 1.25-1.31 s, 256 MiB after), paid again by every run process that runs a check.
Each is stood in for by a `DeferredModule` first: the first attribute read imports the real
module, so an expectation or a renderer that does use them still works.

Not `importlib.util.LazyLoader`: on Python 3.11 any later `import` statement of a lazy module
reads its `__spec__`, which executes it (`importlib._bootstrap._find_and_load`), and GX imports
both names.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

DEFERRED_MODULES = ("scipy.stats", "altair")
_LOCK = threading.RLock()


class DeferredModule(ModuleType):
    """Stands in for a module in `sys.modules` until one of its attributes is read.

    It carries the real module's spec, so `import` statements return it as they would an
    imported module. The first read of any other attribute imports the real module, puts it in
    `sys.modules` and copies its namespace here, so names bound to the stand-in keep working.

    One case it does not cover: importing a submodule (`import scipy.stats._stats_py`) before
    the first attribute read. The import system reads the stand-in's `__path__`, which loads the
    real package and the submodule with it, and then runs the submodule once more (two copies of
    its classes). Giving the stand-in a `__path__` is worse: the submodule then runs before its
    package's `__init__` and fails on a circular import. Nothing in a run process does this (GX
    reads `from scipy import stats`); `test_gx_import` checks that a checked run never loads them.
    """

    def _load(self) -> ModuleType:
        name = self.__name__
        with _LOCK:  # only the swap: the import itself is serialised by the import system
            if sys.modules.get(name) is self:
                del sys.modules[name]
        real = importlib.import_module(name)
        self.__dict__.update(real.__dict__)
        return real

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._load(), attr)

    def __dir__(self) -> list[str]:
        return dir(self._load())


def defer_import(name: str) -> bool:
    """Register a `DeferredModule` for `name` unless it is imported already; True if it was."""
    with _LOCK:
        if name in sys.modules:
            return False
        try:
            spec = importlib.util.find_spec(name)  # imports the parent package (scipy: ~5 ms)
        except ModuleNotFoundError:  # the parent package is not installed
            return False
        if spec is None:
            return False
        stand_in = DeferredModule(name)
        stand_in.__spec__ = spec
        stand_in.__file__ = spec.origin
        stand_in.__loader__ = spec.loader
        stand_in.__package__ = spec.parent
        sys.modules[name] = stand_in
        return True


def import_great_expectations() -> ModuleType:
    """`great_expectations`, with `DEFERRED_MODULES` imported only if something uses them, and
    without the pandas batch fingerprint (`skip_batch_fingerprint`)."""
    if "great_expectations" not in sys.modules:
        for name in DEFERRED_MODULES:
            defer_import(name)
    import great_expectations

    skip_batch_fingerprint()
    return great_expectations


def skip_batch_fingerprint() -> bool:
    """Stop GX hashing every DataFrame it validates; True if the knob was there to turn.

    GX's pandas engine puts an md5 of `pd.util.hash_pandas_object(df)` into each batch's
    markers whenever the frame's shallow memory use is under `HASH_THRESHOLD` (1e9 bytes): every
    frame here. It does so twice per validation (the batch, then the validator's own copy of the
    request). Nothing reads that marker here (results, check metadata and Data Docs pages are
    built without it), and it was 0.4-0.55 s of the 0.75 s that validating a 30k-track packed
    run's four suites takes without it (1.14-1.33 s with it). GX has no setting for it, so the
    threshold goes to 0; `test_gx_import` fails if a GX upgrade drops or renames it.
    """
    from great_expectations.execution_engine import pandas_execution_engine as engine

    if not hasattr(engine, "HASH_THRESHOLD"):
        return False
    engine.HASH_THRESHOLD = 0
    return True
