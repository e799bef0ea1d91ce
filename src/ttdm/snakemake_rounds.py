"""Snakemake's scheduling rounds: at most one pending re-evaluation timer (the Snakefile applies this at parse time).

Snakemake (9.x, ``snakemake.scheduling.job_scheduler.JobScheduler``) runs a scheduling round each time its semaphore
``_open_jobs`` is released: when a job ends, and when a re-evaluation timer fires.  With the default
``--max-jobs-per-timespan 100/1s`` every round that leaves ready jobs behind starts a new ``threading.Timer(1 s)``
whose release runs another round, which starts another timer.  So each job that ends while other jobs are ready
starts a chain of one round per second that lasts as long as there are ready jobs, and the rounds grow with the
square of the number of short jobs.  Each round stats the inputs of the jobs it considers.  Measured on the quick
preset's 316 evaluation jobs (``snakemake --forcerun evaluate --until evaluate``, 2 cores): 8378 rounds and 70 s of
Snakemake CPU over 93 s; with one pending timer 367 rounds, 40 s of CPU over 74 s (both include 9 s waiting for a
stopped SLURM controller and 10 s of imports).

The rate limiter only needs *a* round within ``timespan`` after a round that left ready jobs, and a pending timer
already guarantees one, so a second timer adds rounds and nothing else.  :func:`one_pending_reevaluation` replaces
the private ``JobScheduler._schedule_reevalutation`` by a version that starts a timer only when none is pending.
It changes nothing when that method is missing (another Snakemake version): the workflow then runs as before, with
the extra rounds.
"""

from __future__ import annotations

import threading
from typing import Any

_PATCHED = "_ttdm_one_pending_timer"


def one_pending_reevaluation() -> bool:
    """Patch Snakemake's scheduler so that at most one re-evaluation timer is pending; True when it is (now or
    before), False when this Snakemake has no such method."""
    try:
        from snakemake.scheduling.job_scheduler import JobScheduler
    except ImportError:
        return False
    original = getattr(JobScheduler, "_schedule_reevalutation", None)  # sic: Snakemake's spelling
    if original is None:
        return False
    if getattr(original, _PATCHED, False):
        return True

    def schedule_reevaluation(self: Any, delay: float) -> None:
        """Release ``self._open_jobs`` after ``delay`` seconds, unless a release is already pending."""
        pending = self.__dict__.setdefault("_ttdm_timer_pending", threading.Lock())
        if not pending.acquire(blocking=False):
            return  # a pending timer runs a round within the time span: that is all the rate limiter needs

        def fire() -> None:
            pending.release()
            self._open_jobs.release()

        timer = threading.Timer(delay, fire)
        timer.daemon = True  # a pending re-evaluation never keeps Snakemake from exiting
        timer.start()

    setattr(schedule_reevaluation, _PATCHED, True)
    JobScheduler._schedule_reevalutation = schedule_reevaluation
    return True
