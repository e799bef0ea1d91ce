"""Sample-quality metrics on arrays: each module registers ``fn(x, ref, *, meta, rng) -> dict[str, float]``."""

from ttdm.registry import Registry

METRICS = Registry("metric", "ttdm.metrics")
