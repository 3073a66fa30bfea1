"""The cyclic garbage collector's settings for a run process, which moves rows.

Why: a run process holds millions of long-lived objects (Dagster, pandas, SQLAlchemy, the
definitions, Great Expectations once a check runs), and a partition allocates hundreds of
thousands of small dicts and lists that stay alive while their chunk is written. With Python's
defaults (a young collection every 700 allocations) that triggers 3-5 full collections per
10k-row partition, each walking the whole heap: about 1.2 s of a 4.4-5.4 s partition (assets
only), measured in docs/benchmarks.md, "The garbage collector". So a run:

- collects the young generation every 50,000 allocations and the older two less often
  (thresholds 50,000 / 20 / 100 instead of 700 / 10 / 10);
- freezes what is alive once the code is loaded, and again once Great Expectations is imported,
  out of every later collection (`gc.freeze`), once per process;
- collects once when a later run starts in the same process, cheap with the code frozen, so a
  long-lived process (a Celery worker, a benchmark pool) frees each run's cycles before the next.
  (At the start, not at the end: a resource with a teardown is a generator resource, which
  sensors built outside a `with build_sensor_context(...)` cannot use.)

Reference counting still frees everything that is not in a cycle at once.
"""

from __future__ import annotations

import gc

DEFAULT_YOUNG_THRESHOLD = 50_000
LEAVE_AS_IS = 0  # a run that asks for 0 runs with the interpreter's own thresholds
MIN_YOUNG_THRESHOLD = 700  # Python's default; lower would collect more often, never faster
_OLDER = (20, 100)
_frozen: set[str] = set()
_original: tuple[int, int, int] | None = None


def tuned() -> bool:
    return _original is not None


def freeze_once(what: str) -> None:
    """Move every object alive now out of future collections, once per `what` per process,
    in a process `tune` tuned (elsewhere: nothing).

    Call it right after a large import settles. Young garbage is collected first, so a cycle
    that died during the import is not kept for good. Once, not per run: a long-lived worker
    would otherwise freeze each run's leftovers.
    """
    if tuned() and what not in _frozen:
        _frozen.add(what)
        gc.collect(1)
        gc.freeze()


def tune(young_threshold: int) -> None:
    """Collect the young generation every `young_threshold` allocations and freeze the loaded
    code (the first run in a process), or collect what earlier runs left (a later one); 0 puts
    back the thresholds the process had before it was first tuned."""
    global _original
    if young_threshold == LEAVE_AS_IS:
        if _original is not None:
            gc.set_threshold(*_original)
            _original = None
        return
    if young_threshold < MIN_YOUNG_THRESHOLD:
        raise ValueError(
            f"gc_young_threshold must be 0 (leave the interpreter's) or at least "
            f"{MIN_YOUNG_THRESHOLD} (Python's default), got {young_threshold}"
        )
    if _original is None:
        _original = gc.get_threshold()
    else:  # a later run in this process: free the cycles the runs before it left
        gc.collect()
    gc.set_threshold(young_threshold, *_OLDER)
    freeze_once("code")
