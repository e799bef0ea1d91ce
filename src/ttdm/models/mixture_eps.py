"""The exact noise predictor ε* of a Gaussian-mixture dataset as a model: the sampler floor (method ``analytic``).

``mixture_eps`` has no parameters and nothing to train.  It holds the mixture of the dataset's meta.json (weights
(K,), means (K, D), stds (K, D), in the stored standardised coordinates) as float64 buffers, so the run's model.pt
carries it and a finished run samples without reading the data; the noise schedule comes from the run's spec and is
set by the method.  Built by the registry it is empty (K = 0): the method fills it (:meth:`MixtureEps.set_mixture`)
when training, and loading a state dict gives it the stored mixture, whatever its K.  ε*(x, t) is
:meth:`ttdm.data.mixture.GaussianMixture.eps_model`'s, computed in float64 and returned in x's dtype.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ttdm.data.mixture import GaussianMixture
from ttdm.models import MODELS
from ttdm.options import NoOptions, check_options

_BUFFERS = ("weights", "means", "stds")


@MODELS.register("mixture_eps", options=NoOptions)
class MixtureEps(nn.Module):
    """ε*(x, t) = −σ_t ∇ log p_t(x) of the mixture in its buffers.  Shapes: x: (B, D), t: (B,) -> (B, D).

    Built as ``MixtureEps(dim, image_shape)`` (the registry's builder signature; no hyper-parameters).
    """

    methods: ClassVar[tuple[str, ...]] = ("analytic",)  # the methods that can train it (it has no parameters)

    def __init__(self, dim: int, image_shape: tuple[int, ...] | None = None, **hparams: Any) -> None:
        super().__init__()
        check_options(NoOptions, hparams, "mixture_eps")
        self.dim = int(dim)
        self.register_buffer("weights", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("means", torch.zeros(0, self.dim, dtype=torch.float64))
        self.register_buffer("stds", torch.zeros(0, self.dim, dtype=torch.float64))
        self.schedule: Any = None
        self._forget()

    def _forget(self) -> None:
        object.__setattr__(self, "_eps_model", None)  # not a submodule: nothing of it enters the state dict

    def set_mixture(self, record: dict[str, Any]) -> "MixtureEps":
        """Hold the mixture ``record`` ({"weights": [K], "means": [K][D], "stds": [K][D]}, the meta.json format)."""
        mixture = GaussianMixture.from_dict(record)  # checks shapes and values
        if mixture.dim != self.dim:
            raise ValueError(f"mixture of dimension {mixture.dim} for a mixture_eps model of dimension {self.dim}")
        device = self.weights.device
        for name in _BUFFERS:  # the record's own values, so a loaded run rebuilds exactly this mixture
            setattr(self, name, torch.as_tensor(np.asarray(record[name], dtype=np.float64), device=device))
        self._forget()
        return self

    def set_schedule(self, schedule: Any) -> "MixtureEps":
        """The run's noise schedule (:class:`ttdm.schedules.NoiseSchedule`): α(t), σ(t) of ε*(x, t)."""
        self.schedule = schedule
        self._forget()
        return self

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    def mixture(self) -> GaussianMixture:
        """The held mixture (an error when none is held yet)."""
        if self.n_components == 0:
            raise RuntimeError("mixture_eps holds no mixture: the analytic method sets it from the dataset's "
                               "meta.json, or a finished run's model.pt loads it")
        return GaussianMixture(*(getattr(self, name).detach().cpu().numpy() for name in _BUFFERS))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self._eps_model is None:
            if self.schedule is None:
                raise RuntimeError("mixture_eps has no noise schedule: the analytic method sets the run's")
            object.__setattr__(self, "_eps_model", self.mixture().eps_model(self.schedule))
        return self._eps_model(x, t)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        # the stored mixture has its own K: take the stored shapes before torch copies the values
        for name in _BUFFERS:
            value = state_dict.get(prefix + name)
            if isinstance(value, torch.Tensor):
                setattr(self, name, torch.empty_like(value, dtype=torch.float64, device=getattr(self, name).device))
        self._forget()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
