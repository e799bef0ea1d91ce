"""Which discrete steps a sampler visits: the spacings of Lin et al. (2024, Table 2), as diffusers' set_timesteps."""

from __future__ import annotations

import numpy as np
import torch

SPACINGS = ("trailing", "leading", "linspace")


def timesteps(T: int, steps: int, spacing: str = "trailing") -> torch.Tensor:
    """Descending step indices i in {0, ..., T-1} visited by a sampler that evaluates the model ``steps`` times.

    trailing: round(T - k T/steps) - 1 for k = 0..steps-1, starts at T-1 (pure noise; the default here, since
    "leading" never starts from the last step); leading: k (T // steps) for k = steps-1..0; linspace:
    round(linspace(0, T-1, steps)), reversed.  Identical to diffusers' ``DDIMScheduler.set_timesteps`` for the same
    ``timestep_spacing`` (steps_offset = 0), except that for some (T, steps), e.g. (100, 29), diffusers' trailing
    ``np.arange(T, 0, -T/steps)`` has steps + 1 entries, the last one rounding to step -1; here it is cut to
    ``steps``.  steps = T gives T-1, ..., 0 for every spacing.  Returns a (steps,) long tensor.
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
    else:
        raise ValueError(f"unknown timestep spacing {spacing!r}; allowed: {', '.join(SPACINGS)}")
    return torch.from_numpy(ts.copy())


def step_pairs(T: int, steps: int, spacing: str) -> list[tuple[int, int]]:
    """(i, prev) pairs of consecutive visited steps; the last prev is -1 (abar_{-1} = 1: the clean data)."""
    ts = timesteps(T, steps, spacing).tolist()
    return list(zip(ts, ts[1:] + [-1]))
