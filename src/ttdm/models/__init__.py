"""Noise-prediction networks: each module registers a builder ``build(dim, image_shape, **hparams) -> nn.Module``."""

from ttdm.registry import Registry

MODELS = Registry("model", "ttdm.models")
