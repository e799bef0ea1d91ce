"""Loading finished training runs: ``model.pt`` back into its method's parts, ready to sample or to be needed.

``model.pt`` holds {"format", "spec" (canonical JSON), "dim", "image_shape", "parts": {name: state dict of the
sampling weights (EMA where the method keeps one)}}.  The method is rebuilt from the spec, its parts are built
(no data: sampling-time construction) and loaded, in eval mode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

MODEL_FORMAT = 2


def canonical(spec: dict[str, Any]) -> str:
    """The spec as key-sorted JSON: the form stored in checkpoints and compared on resume."""
    return json.dumps(spec, sort_keys=True)


def build_model(spec: dict[str, Any], dim: int, image_shape: tuple[int, ...] | None) -> nn.Module:
    """The network ``spec["arch"]`` with hparams ``spec["model_cfg"]``, initialised by torch's RNG at ``spec["seed"]``.

    The global RNG is restored afterwards, so building a model has no side effect on other random draws.
    """
    from ttdm.models import MODELS

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(spec["seed"]))
        return MODELS.get(spec["arch"])(dim, image_shape, **spec.get("model_cfg", {}))


def make_method(spec: dict[str, Any], ctx: Any) -> Any:
    """The registered method of ``spec["method"]`` with its options from ``spec["training"]``, for ``ctx``."""
    from ttdm.methods import METHODS
    from ttdm.options import check_options
    from ttdm.config.methods import LOOP_KEYS

    cls = METHODS.get(spec["method"])
    values = {k: v for k, v in spec.get("training", {}).items() if k not in LOOP_KEYS}
    return cls(check_options(cls.Options, values, "training"), ctx)


@dataclass
class Run:
    """A finished run: its method, its parts with the sampling weights (eval mode), spec, D and image shape."""

    method: Any
    parts: dict[str, nn.Module]
    spec: dict[str, Any]
    dim: int
    image_shape: tuple[int, ...] | None

    @property
    def model(self) -> nn.Module:
        """The denoiser of a noise-prediction run (its only part)."""
        return self.parts["denoiser"]

    def sampling_object(self, protocol: str) -> Any:
        """What a sampler of ``protocol`` receives (:meth:`ttdm.methods.base.Method.sampling_object`)."""
        return self.method.sampling_object(self.parts, protocol)


def load_run(run_dir: str | Path, device: str = "cpu") -> Run:
    """Load ``run_dir/model.pt`` (``weights_only=True``) into a :class:`Run` whose parts live on ``device``."""
    from ttdm.methods.base import Context

    path = Path(run_dir) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model (the training run is missing or did not finish)")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if blob.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: model format {blob.get('format')!r}, expected {MODEL_FORMAT}; retrain the run")
    spec = json.loads(blob["spec"])
    shape = tuple(blob["image_shape"]) if blob["image_shape"] is not None else None
    ctx = Context(spec=spec, dim=int(blob["dim"]), image_shape=shape, device=device)
    method = make_method(spec, ctx)
    with torch.random.fork_rng(devices=[]):  # parts are initialised from the run's seed, without side effects
        torch.manual_seed(int(spec["seed"]))
        parts = method.build()
    for name, part in parts.items():
        part.load_state_dict(blob["parts"][name])
        part.to(device).eval()
    return Run(method, parts, spec, int(blob["dim"]), shape)


def load_model(run_dir: str | Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The denoiser of a finished run in eval mode on ``device``, and the run's spec (see :func:`load_run`)."""
    run = load_run(run_dir, device)
    return run.model, run.spec
