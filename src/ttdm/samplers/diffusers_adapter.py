"""Any diffusers scheduler as a ttdm sampler: ``{kind: diffusers, scheduler: UniPCMultistepScheduler, steps: [...]}``.

The scheduler is built on the run's own betas (ε-prediction, no sample clipping or thresholding), asked for
``steps`` steps (``set_timesteps``), and driven by the usual loop: x_T·``init_noise_sigma``, then for every
timestep τ of the scheduler ε = ε_θ(scale_model_input(x, τ), t = (τ + 1)/T) and ``step``.  τ may be fractional
(Euler/Heun/Karras sigmas): t is then fractional too, and our continuous-time models take it.  Second-order
schedulers (Heun, KDPM2) evaluate the model twice per step, which the sample stage's NFE count records.

``SCHEDULERS`` lists the classes that take a discrete beta table and an ε-prediction (tested in
tests/test_diffusers_adapter.py); the config is checked against it without importing diffusers (which takes
seconds).  ``config`` passes further constructor arguments (e.g. ``{solver_order: 3}``).
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from ttdm.options import option
from ttdm.samplers import SAMPLERS, Denoiser

SCHEDULERS = (
    "DDIMScheduler", "DDPMScheduler", "DEISMultistepScheduler", "DPMSolverMultistepScheduler",
    "DPMSolverSinglestepScheduler", "EulerAncestralDiscreteScheduler", "EulerDiscreteScheduler",
    "HeunDiscreteScheduler", "KDPM2AncestralDiscreteScheduler", "KDPM2DiscreteScheduler", "LMSDiscreteScheduler",
    "PNDMScheduler", "SASolverScheduler", "UniPCMultistepScheduler",
)
DIFFUSERS_SPACINGS = ("trailing", "leading", "linspace")
FIXED = {"prediction_type": "epsilon", "clip_sample": False, "thresholding": False}  # where the class has them


@dataclass(frozen=True)
class DiffusersOptions:
    scheduler: str = option("UniPCMultistepScheduler", "the diffusers scheduler class", choices=SCHEDULERS)
    spacing: str = option("trailing", "diffusers' timestep_spacing", choices=DIFFUSERS_SPACINGS)
    config: dict = option({}, "further constructor arguments of the class (e.g. solver_order: 3)")


def build_scheduler(name: str, schedule: Any, spacing: str = "trailing", config: dict | None = None) -> Any:
    """The diffusers scheduler ``name`` on ``schedule``'s betas (float32, as diffusers stores them)."""
    import diffusers

    cls = getattr(diffusers, name, None)
    if cls is None:
        raise ValueError(f"diffusers {diffusers.__version__} has no scheduler {name!r}")
    accepted = set(inspect.signature(cls.__init__).parameters)
    fixed = {k: v for k, v in FIXED.items() if k in accepted}
    extra = dict(config or {})
    unknown = sorted(set(extra) - accepted)
    if unknown:
        raise ValueError(f"diffusers {name} takes no argument(s) {', '.join(unknown)}")
    clash = sorted(set(extra) & set(fixed))
    if clash:
        raise ValueError(f"sampler config may not set {', '.join(clash)}: ttdm's models predict ε on unclipped data")
    kwargs = {"num_train_timesteps": schedule.T, "trained_betas": schedule.betas.numpy(), **fixed, **extra}
    if "timestep_spacing" in accepted:
        kwargs["timestep_spacing"] = spacing
    return cls(**kwargs)


@SAMPLERS.register("diffusers", options=DiffusersOptions)
def sample_diffusers(
    denoiser: Denoiser,
    x: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    scheduler: str = "UniPCMultistepScheduler",
    spacing: str = "trailing",
    config: dict | None = None,
) -> torch.Tensor:
    """Draw x_0 from the noise ``x`` (B, D) with diffusers' ``scheduler`` asked for ``steps`` steps; stochastic
    schedulers draw from ``generator``.  Returns x_0: (B, D) in x's dtype."""
    schedule = denoiser.schedule
    sched = build_scheduler(scheduler, schedule, spacing, config)
    sched.set_timesteps(steps, device=x.device)
    takes_generator = "generator" in inspect.signature(sched.step).parameters
    dtype = x.dtype
    x = x * sched.init_noise_sigma
    with torch.no_grad():
        for tau in tqdm(sched.timesteps, desc=scheduler, leave=False, disable=not sys.stderr.isatty()):
            t = torch.full((len(x),), (float(tau) + 1.0) / schedule.T, device=x.device)
            eps = denoiser(sched.scale_model_input(x, tau).to(dtype), t)
            out = sched.step(eps, tau, x, generator=generator) if takes_generator else sched.step(eps, tau, x)
            x = out.prev_sample.to(dtype)
    return x
