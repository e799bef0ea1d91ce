"""How long a command takes to start: the process's start time, and the time spent importing modules.

Used by the CLI to end every command's log with its start-up time, so the pipeline's job overhead (process start and
imports) can be summed from the logs (``scripts/pipeline_bench.py``).
"""

from __future__ import annotations

import builtins
import os
import time


def process_start_time(pid: int | str = "self") -> float | None:
    """When process ``pid`` started, in epoch seconds, to 10 ms (Linux /proc; None elsewhere).

    Its age is /proc/uptime minus its start time after boot (/proc/PID/stat field 22, in clock ticks); both count
    from boot in hundredths of a second, unlike /proc/stat's btime, which is rounded to whole seconds.
    """
    try:
        with open(f"/proc/{pid}/stat") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


class ImportClock:
    """A context that adds up the wall time spent in (outermost) imports while it is active."""

    def __init__(self) -> None:
        self.import_s = 0.0
        self.entered = self.left = 0.0
        self._depth = 0

    def __enter__(self) -> "ImportClock":
        self._original = builtins.__import__
        clock = self

        def timed_import(*args: object, **kwargs: object) -> object:
            if clock._depth:
                return clock._original(*args, **kwargs)
            clock._depth += 1
            tick = time.perf_counter()
            try:
                return clock._original(*args, **kwargs)
            finally:
                clock.import_s += time.perf_counter() - tick
                clock._depth -= 1

        builtins.__import__ = timed_import
        self.entered = time.time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.left = time.time()
        builtins.__import__ = self._original

    def summary(self, name: str, started: float | None) -> str:
        """``NAME: start-up S s (imports I s), total T s`` (S: process start to work, imports included)."""
        before = (self.entered - started) if started else 0.0
        total = (self.left - started) if started else self.left - self.entered
        return f"{name}: start-up {before + self.import_s:.3f} s (imports {self.import_s:.3f} s), total {total:.3f} s"
