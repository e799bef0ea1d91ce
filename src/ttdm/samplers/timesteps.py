"""Which discrete steps a sampler visits: the spacings of Lin et al. (2024, Table 2), as diffusers' set_timesteps."""

from __future__ import annotations

import numpy as np
import torch

SPACINGS = ("trailing", "leading", "linspace")


def timesteps(T: int, steps: int, spacing: str = "trailing") -> torch.Tensor:
    """Descending step indices i in {0, ..., T-1} visited by a sampler that evaluates the model ``steps`` times.

    trailing: round(arange(T, 0, -T/steps)) - 1, starts at T-1 (pure noise; the default here, since "leading"
    never starts from the last step); leading: arange(steps) * (T // steps), reversed; linspace: round(linspace(0,
    T-1, steps)), reversed. Identical to diffusers' ``DDIMScheduler.set_timesteps`` for the same ``timestep_spacing``
    (steps_offset = 0). Returns a (steps,) long tensor.
    """
    if not isinstance(steps, (int, np.integer)) or not 1 <= steps <= T:
        raise ValueError(f"number of sampling steps must be an integer in [1, T = {T}], got {steps!r}")
    if spacing == "trailing":
        ts = np.round(np.arange(T, 0, -T / steps)).astype(np.int64) - 1
    elif spacing == "leading":
        ts = (np.arange(0, steps) * (T // steps)).round()[::-1].astype(np.int64)
    elif spacing == "linspace":
        ts = np.linspace(0, T - 1, steps).round()[::-1].astype(np.int64)
    else:
        raise ValueError(f"unknown timestep spacing {spacing!r}; allowed: {', '.join(SPACINGS)}")
    return torch.from_numpy(ts.copy())


def step_pairs(T: int, steps: int, spacing: str) -> list[tuple[int, int]]:
    """(i, prev) pairs of consecutive visited steps; the last prev is -1 (abar_{-1} = 1: the clean data)."""
    ts = timesteps(T, steps, spacing).tolist()
    return list(zip(ts, ts[1:] + [-1]))
