"""Training methods, one module each, registered in ``METHODS``: see :mod:`ttdm.methods.base` for the contract.

A method owns how its model is trained and sampled (options, parts, optimizers, training step, validation,
checkpoint contents, the runs it needs, and what samples it); the generic loop of :mod:`ttdm.stages.train` runs it.
"""

from ttdm.registry import Registry

METHODS = Registry("method", "ttdm.methods")
