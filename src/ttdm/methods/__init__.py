"""Training methods (losses and training steps): each module registers a class with ``loss(model, x0, schedule, g)``."""

from ttdm.registry import Registry

METHODS = Registry("method", "ttdm.methods")
