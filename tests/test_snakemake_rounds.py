"""At most one pending scheduling-round timer in Snakemake's scheduler (ttdm.snakemake_rounds)."""

from __future__ import annotations

import threading
import time

from snakemake.scheduling.job_scheduler import JobScheduler

from ttdm.snakemake_rounds import one_pending_reevaluation


class _Scheduler:
    """The part of a JobScheduler that the re-evaluation timer touches."""

    def __init__(self) -> None:
        self._open_jobs = threading.Semaphore(0)


def _releases(scheduler: _Scheduler, wait: float) -> int:
    time.sleep(wait)
    count = 0
    while scheduler._open_jobs.acquire(blocking=False):
        count += 1
    return count


def test_rounds_requested_while_a_timer_is_pending_give_one_round():
    assert one_pending_reevaluation() and one_pending_reevaluation()  # patched once, idempotent
    scheduler = _Scheduler()
    for _ in range(5):  # five rounds that left ready jobs: Snakemake's own method would start five timers
        JobScheduler._schedule_reevalutation(scheduler, 0.05)
    assert _releases(scheduler, 0.3) == 1
    JobScheduler._schedule_reevalutation(scheduler, 0.05)  # the timer has fired: the next request starts a new one
    assert _releases(scheduler, 0.3) == 1


def test_each_scheduler_has_its_own_pending_timer():
    one_pending_reevaluation()
    first, second = _Scheduler(), _Scheduler()
    JobScheduler._schedule_reevalutation(first, 0.05)
    JobScheduler._schedule_reevalutation(second, 0.05)
    assert _releases(first, 0.3) == 1 and _releases(second, 0.0) == 1


def test_pending_timers_do_not_keep_the_process_alive():
    one_pending_reevaluation()
    scheduler = _Scheduler()
    JobScheduler._schedule_reevalutation(scheduler, 30.0)
    timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive()]
    assert timers and all(t.daemon for t in timers)
    for timer in timers:
        timer.cancel()
