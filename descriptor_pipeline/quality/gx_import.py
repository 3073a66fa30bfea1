"""Great Expectations, imported without the two modules it loads for an expectation this project
never runs.

`import great_expectations` registers every core expectation. One of them,
`expect_column_kl_divergence_to_be_less_than`, imports `scipy.stats` and `altair` at module level
and only calls them inside its methods. Measured on this project's machines, those two are about
1.1 s and 95 MiB of GX's ~2.5 s / ~140 MiB import, paid again by every run process that runs a
check. Each is stood in for by a `DeferredModule` first: the first attribute read imports the
real module, so an expectation or a renderer that does use them still works.

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
    """

    def __getattr__(self, attr: str) -> Any:
        with _LOCK:
            name = self.__name__
            if sys.modules.get(name) is self:
                del sys.modules[name]
            real = importlib.import_module(name)
            self.__dict__.update(real.__dict__)
        return getattr(real, attr)


def defer_import(name: str) -> bool:
    """Register a `DeferredModule` for `name` unless it is imported already; True if it was."""
    with _LOCK:
        if name in sys.modules:
            return False
        spec = importlib.util.find_spec(name)  # imports the parent package (scipy: ~5 ms)
        if spec is None:
            return False
        stand_in = DeferredModule(name)
        stand_in.__spec__ = spec
        stand_in.__file__ = spec.origin
        stand_in.__loader__ = spec.loader
        sys.modules[name] = stand_in
        return True


def import_great_expectations() -> ModuleType:
    """`great_expectations`, with `DEFERRED_MODULES` imported only if something uses them."""
    if "great_expectations" not in sys.modules:
        for name in DEFERRED_MODULES:
            defer_import(name)
    import great_expectations

    return great_expectations
