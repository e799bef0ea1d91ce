"""Which discrete steps a sampler visits: the spacings of Lin et al. (2024, Table 2), as diffusers' set_timesteps, and
two that crowd the steps towards the data: quadratic in the step index (Song et al. 2021, DDIM's CIFAR-10 choice)
and uniform in the log-SNR λ (Lu et al. 2022, DPM-Solver's default)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

SPACINGS = ("trailing", "leading", "linspace", "quadratic", "logsnr")


def timesteps(T: int, steps: int, spacing: str = "trailing", schedule: Any = None) -> torch.Tensor:
    """Descending step indices i in {0, ..., T-1} visited by a sampler that evaluates the model ``steps`` times.

    trailing: round(T - k T/steps) - 1 for k = 0..steps-1, starts at T-1 (pure noise; the default here, since
    "leading" never starts from the last step); leading: k (T // steps) for k = steps-1..0; linspace:
    round(linspace(0, T-1, steps)), reversed.  Identical to diffusers' ``DDIMScheduler.set_timesteps`` for the same
    ``timestep_spacing`` (steps_offset = 0), except that for some (T, steps), e.g. (100, 29), diffusers' trailing
    ``np.arange(T, 0, -T/steps)`` has steps + 1 entries, the last one rounding to step -1; here it is cut to
    ``steps``.  quadratic: ⌈T ((steps − k)/steps)²⌉ − 1 for k = 0..steps-1 (starts at T-1, denser near the data);
    logsnr: the step nearest to λ_k on a uniform grid of ``steps`` log-SNRs from λ_{T-1} to λ_0 (needs ``schedule``,
    a :class:`ttdm.schedules.NoiseSchedule`).  Where rounding makes two of these steps equal, the later one moves
    down so that the steps stay distinct.  steps = T gives T-1, ..., 0 for every spacing.  Returns a (steps,)
    long tensor.
    """
    if not isinstance(T, (int, np.integer)) or isinstance(T, bool) or T < 1:
        raise ValueError(f"number of diffusion steps T must be a positive integer, got {T!r}")
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or not 1 <= steps <= T:
        raise ValueError(f"number of sampling steps must be an integer in [1, T = {T}], got {steps!r}")
    if spacing == "trailing":
        ts = np.round(np.arange(T, 0, -T / steps)[:steps]).astype(np.int64) - 1  # diffusers' floats, to the last bit
    elif spacing == "leading":
        ts = (np.arange(steps) * (T // steps))[::-1]
    elif spacing == "linspace":
        ts = np.linspace(0, T - 1, steps).round()[::-1].astype(np.int64)
    elif spacing == "quadratic":
        ts = _distinct(np.ceil(T * ((steps - np.arange(steps)) / steps) ** 2).astype(np.int64) - 1, T)
    elif spacing == "logsnr":
        if schedule is None or getattr(schedule, "T", None) != T:
            raise ValueError(f"the logsnr spacing needs the discrete schedule of T = {T} steps (its λ table)")
        lam = schedule.logsnr(torch.arange(T)).numpy()  # (T,) decreasing in the step index
        grid = np.linspace(lam[-1], lam[0], steps)  # from the noisiest step to the cleanest
        pos = np.clip(np.searchsorted(-lam, -grid), 1, T - 1)  # λ table descending: search its negation
        nearer_left = np.abs(lam[pos - 1] - grid) <= np.abs(lam[pos] - grid)
        ts = _distinct(np.where(nearer_left, pos - 1, pos).astype(np.int64), T)
    else:
        raise ValueError(f"unknown timestep spacing {spacing!r}; allowed: {', '.join(SPACINGS)}")
    return torch.from_numpy(ts.copy())


def _distinct(ts: np.ndarray, T: int) -> np.ndarray:
    """A descending run of n ≤ T steps made strictly decreasing within [0, T - 1]: step k is first kept in
    [n − 1 − k, T − 1 − k] (room for the others), then moved below its predecessor where rounding made them equal."""
    n = len(ts)
    k = np.arange(n)
    ts = np.clip(ts, n - 1 - k, T - 1 - k)
    for j in range(1, n):
        ts[j] = min(ts[j], ts[j - 1] - 1)
    return ts


def step_pairs(T: int, steps: int, spacing: str, schedule: Any = None) -> list[tuple[int, int]]:
    """(i, prev) pairs of consecutive visited steps; the last prev is -1 (abar_{-1} = 1: the clean data)."""
    ts = timesteps(T, steps, spacing, schedule).tolist()
    return list(zip(ts, ts[1:] + [-1]))
