"""The ``diffusers`` sampler: any listed diffusers scheduler drives our models.

The model is the exact ε-predictor of N(0, S² I) data (tests/test_samplers.py).  diffusers keeps its tables in
float32, so where the same algorithm exists on our side the two agree to float32 rounding (1e-4), not to 1e-10.
"""

from __future__ import annotations

import copy

import pytest
import torch

from ttdm.config import ConfigError, validate_config
from ttdm.samplers import SAMPLERS, Denoiser
from ttdm.samplers.diffusers_adapter import SCHEDULERS, build_scheduler
from ttdm.schedules import make_schedule

from test_samplers import S, exact_eps, randn

SCHEDULE = {"kind": "linear", "T": 1000}


def counted(model, calls):
    def fn(x, t):
        calls.append(len(x))
        return model(x, t)
    return fn


@pytest.mark.parametrize("kind,knobs,scheduler,config", [
    ("ddim", {"spacing": "trailing"}, "DDIMScheduler", {"set_alpha_to_one": True}),
    ("dpmpp", {"spacing": "trailing", "order": 2}, "DPMSolverMultistepScheduler", {"solver_order": 2}),
    ("dpmpp", {"spacing": "trailing", "order": 3}, "DPMSolverMultistepScheduler", {"solver_order": 3}),
])
@pytest.mark.parametrize("steps", [10, 20, 50])
def test_adapter_reproduces_our_samplers(kind, knobs, scheduler, config, steps):
    schedule = make_schedule(SCHEDULE)
    den = Denoiser(exact_eps(schedule), schedule)
    x_T = randn((64, 2), 0)
    ours = SAMPLERS.get(kind)(den, x_T, steps, **knobs)
    theirs = SAMPLERS.get("diffusers")(den, x_T, steps, scheduler=scheduler, spacing="trailing", config=config)
    assert theirs.dtype == torch.float64
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=0), float((ours - theirs).abs().max())


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_listed_scheduler_samples_the_data(scheduler):
    """50 steps from N(0, I) noise on the exact ε*: samples of mean 0 and std S (within the discretisation error of
    a 50-step sampler, up to 0.06 here, and 4000-value noise); the NFE is one per step (two for second-order
    steppers, PNDM's warm-up more)."""
    schedule = make_schedule(SCHEDULE)
    calls: list[int] = []
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = SAMPLERS.get("diffusers")(Denoiser(counted(exact_eps(schedule), calls), schedule), x, 50,
                                    scheduler=scheduler, generator=gen)
    assert torch.isfinite(out).all()
    assert abs(out.std().item() - S) < 0.08, out.std().item()
    assert abs(out.mean().item()) < 0.03
    assert 50 <= len(calls) <= 100


def test_a_scheduler_takes_further_arguments_and_refuses_unknown_ones():
    schedule = make_schedule(SCHEDULE)
    assert build_scheduler("UniPCMultistepScheduler", schedule, config={"solver_order": 3}).config.solver_order == 3
    with pytest.raises(ValueError, match="takes no argument.*solver_ordr"):
        build_scheduler("UniPCMultistepScheduler", schedule, config={"solver_ordr": 3})
    with pytest.raises(ValueError, match="may not set prediction_type"):
        build_scheduler("DDIMScheduler", schedule, config={"prediction_type": "sample"})


def test_config_names_an_unlisted_scheduler(quick_config):
    config = copy.deepcopy(quick_config)
    config["sampling"]["samplers"]["unipc"] = {"kind": "diffusers", "scheduler": "FooScheduler", "steps": [10]}
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    message = str(err.value)
    assert "sampling.samplers.unipc.scheduler" in message and "'FooScheduler'" in message
    assert "UniPCMultistepScheduler" in message
