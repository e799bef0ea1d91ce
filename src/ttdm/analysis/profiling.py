"""Peak memory of a block of code: CUDA's allocator peak, or the polled resident set size on the CPU."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc; 0 where unavailable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    import resource

    return pages * resource.getpagesize() / 2**20


@contextmanager
def peak_memory(device: str, interval_s: float = 0.002) -> Iterator[dict[str, float]]:
    """Measure peak memory (MiB) inside the block: CUDA's allocator peak, or the polled peak RSS on the CPU."""
    result: dict[str, float] = {}
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        yield result
        torch.cuda.synchronize()
        result["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return
    peak = [rss_mb()]
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb())
            stop.wait(interval_s)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result["peak_mem_mb"] = max(peak[0], rss_mb())
