"""The cyclic garbage collector's settings for a process that moves rows.

Why: a run process holds millions of long-lived objects (Dagster, pandas, SQLAlchemy, the
definitions, Great Expectations once a check runs), and a partition allocates hundreds of
thousands of small dicts and lists that stay alive while their chunk is written. With Python's
defaults (a young collection every 700 allocations) that triggers 3-5 full collections per
10k-row partition, each walking the whole heap: 1.1-1.7 s of a 4.5 s partition, measured
(docs/benchmarks.md, "The garbage collector"). Freezing what is alive once the code is loaded
takes it out of every later collection (`gc.freeze`), and a larger first threshold makes the
young collections rare. Reference counting still frees everything that is not in a cycle at
once, so memory stays bounded by the chunk.
"""

from __future__ import annotations

import gc

PYTHON_DEFAULT = 0  # keep Python's own thresholds
_frozen: set[str] = set()
_tuned = False


def freeze_once(what: str) -> None:
    """Move every object alive now out of future collections, once per `what` per process,
    in a process that `tune` tuned (elsewhere: nothing).

    Call it right after a large import settles. Once, not per run: a long-lived worker
    (Celery, a benchmark pool) would otherwise freeze each run's leftovers for good.
    """
    if _tuned and what not in _frozen:
        _frozen.add(what)
        gc.freeze()


def tune(young_threshold: int) -> None:
    """Collect the young generation every `young_threshold` allocations (0: Python's default)
    and freeze the loaded code out of later collections."""
    global _tuned
    if young_threshold == PYTHON_DEFAULT:
        return
    _tuned = True
    gc.set_threshold(young_threshold, 20, 100)
    freeze_once("code")
