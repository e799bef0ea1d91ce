"""Samplers: each module registers ``sample(model, x, schedule, steps, *, generator, **knobs) -> x0``."""

from ttdm.registry import Registry

SAMPLERS = Registry("sampler", "ttdm.samplers")
