"""Waiting for and stopping the real processes the tests and the benchmarks start (webserver,
daemon, Celery workers, run processes): one copy of each, so a timeout reads the same everywhere."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def log_tails(logs: Sequence[Path]) -> str:
    """The last 3,000 characters of each log that exists, for a failure message."""
    return "".join(
        f"\n--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}"
        for log in logs
        if log.exists()
    )


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    logs: Sequence[Path],
    every: float = 0.5,
) -> T:
    """Poll until probe returns something truthy (every 0.5 s: well below every interval the
    benchmarks measure); raise with the processes' log tails otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{log_tails(logs)}")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Signal a process group started with start_new_session (so its code servers and runs
    go too); SIGKILL it if it lingers."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
