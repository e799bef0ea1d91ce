"""The Method contract: everything about how one kind of generative model is trained and sampled.

One generic loop (:mod:`ttdm.stages.train`) trains every method; one generic stage (:mod:`ttdm.stages.sample`)
samples every run.  What differs between methods lives here, in one class per method:

==================  ===================================================================================
``Options``         a frozen dataclass (:mod:`ttdm.options`) of the method's training keys; the config is
                    checked against it before any job starts, naming the key of any bad value
``needs``           the runs it depends on, by role (``{"init": "mlp"}``): trained first, same dataset and
                    seed; their ``model.pt`` are inputs of this run and their spec hashes part of its spec
``inputs``          other result files its runs read, by role (a student's teacher trajectories): inputs of
                    its train job, given to the run as ``ctx.inputs``
``build``           its trainable parts, by name (denoiser; or generator + discriminator; encoder + decoder)
``ema_parts``       the parts whose exponential moving average the loop keeps; those EMA weights sample
``optimizers``      one torch optimizer per name (possibly none: ALS sweeps update parts directly)
``train_step``      one step on a batch of training rows, returning the loss to log
``validate``        the numbers logged beside the loss (``val_loss``; bits/dim for a likelihood model)
``elbo``            its variational bound on −log p(x) of test rows (DDPM's ELBO, VDM's VLB), or None
``noise_dim``,      the size of a sampler's starting noise and how its output becomes data rows (a latent
``decode``          method's latent size and decoder; by default D and the identity)
``state_dict``      the method's own state beyond parts, optimizers and the generator (an RGD step size)
``provides``        how its runs are sampled: ``"denoiser"`` (ε_θ on a noise schedule, for every generic
                    sampler) and/or protocols of samplers of its own (a GAN's posterior chain, one step)
``trains``          False for a method with nothing to train (the sampler floor's exact ε*): its runs take
                    0 steps whatever ``steps`` says, and the loop still writes every output
``archs``,          the model archs it can train (None: any), and why it cannot train on a dataset of the
``dataset_error``   config (the sampler floor needs a Gaussian mixture): both checked before any job starts
==================  ===================================================================================

The loop owns the held-out validation rows (``val_fraction`` of ``train.npy``, a training key of the methods that
declare it, default :data:`VAL_FRACTION`; the same rows for every run of a dataset: ``ctx.val_data``, never in
``ctx.data``), batches (rows of ``ctx.data`` drawn with replacement from one generator), EMA, checkpoints of every
part, optimizer, the method's state and the generator, bit-identical resume, the non-finite-loss stop, progress and
the loss log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ttdm.io import spec_hash
from ttdm.options import NoOptions

if TYPE_CHECKING:
    from ttdm.runs import Run

VAL_FRACTION = 0.1  # rows of train.npy held out for validation when the run's training keys do not say otherwise


@dataclass
class Context:
    """What a method sees of its run.

    spec: the run's spec (dataset, model, arch, model_cfg, seed, method, schedule, training, ...);
    dim, image_shape: the data's D and image shape (None for vectors); device: where tensors live;
    meta: the dataset's meta.json record; data: (N, D) the fitting rows on ``device``, the only rows the loop's
    batches (and a method's fitting samples) may use (None when only sampling); val_data: (N_val, D) the
    validation rows held out of ``train.npy`` by the loop (:func:`hold_out`: the same rows for
    every run of a dataset, whatever its seed or model; None when only sampling); needs: the finished runs this run
    depends on, by role; inputs: the other files it reads (:meth:`Method.inputs`), by role (empty when only
    sampling).
    """

    spec: dict[str, Any]
    dim: int
    image_shape: tuple[int, ...] | None
    device: str = "cpu"
    meta: dict[str, Any] = field(default_factory=dict)
    data: torch.Tensor | None = None
    needs: dict[str, "Run"] = field(default_factory=dict)
    val_data: torch.Tensor | None = None
    inputs: dict[str, Path] = field(default_factory=dict)


class Method:
    """Base class of every registered method; see the module docstring for the contract."""

    Options: ClassVar[type] = NoOptions
    provides: ClassVar[tuple[str, ...]] = ("denoiser",)
    rng_stream: ClassVar[str] = "batches"  # names the seed of the loop's generator: spec_hash([stream, seed])
    window_mean: ClassVar[bool] = True  # log the mean loss of the last log_every steps (else the last step's)
    trains: ClassVar[bool] = True  # False: nothing to train; its runs take 0 steps (the config sets steps to 0)
    archs: ClassVar[tuple[str, ...] | None] = None  # the model archs it can train (None: any)
    data_likelihood: ClassVar[bool] = True  # False: its bound/ODE would be in another space (latents): no likelihood job
    denoises_data: ClassVar[bool] = True  # its denoiser's x is a data row (False: latents): x̂_0 clipping may apply

    def __init__(self, options: Any, ctx: Context) -> None:
        self.options = options
        self.ctx = ctx

    # ---- before any job: the workflow asks these of the options alone ----------------------------------------
    @classmethod
    def needs(cls, options: Any) -> dict[str, str]:
        """Runs this method's runs depend on: {role: model name} (same dataset and seed)."""
        return {}

    @classmethod
    def inputs(cls, options: Any, dataset: str, seed: int) -> dict[str, str]:
        """Result files (besides the needed runs) that this method's run of (``dataset``, ``seed``) reads, by role:
        {role: path relative to the workflow's root}.  They are inputs of its train job (a changed file retrains it)
        and reach the method as ``ctx.inputs``; a rule of the method's own writes them."""
        return {}

    @classmethod
    def sampler_error(cls, options: Any, protocol: str, steps: int, spec: dict[str, Any]) -> str | None:
        """Why a sampler of ``protocol`` with ``steps`` cannot sample this method's run of ``spec``, or None.

        The default accepts denoiser samplers whose step count fits the run's discrete schedule.
        """
        if protocol not in cls.provides:
            return f"method provides {', '.join(cls.provides)}, not {protocol!r}"
        T = spec.get("schedule", {}).get("T")
        if protocol == "denoiser" and T is not None and steps > T:
            return f"{steps} steps exceed the schedule's T = {T}"
        return None

    @classmethod
    def dataset_error(cls, options: Any, name: str, entry: dict[str, Any]) -> str | None:
        """Why this method cannot train on the config's dataset ``name`` (``entry``: its kind, options and split
        sizes), or None.  The default accepts every dataset."""
        return None

    # ---- training --------------------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int | None:
        """Rows of ``ctx.data`` the loop draws per step (None: the loop draws none)."""
        return getattr(self.options, "batch_size", None)

    def build(self) -> dict[str, nn.Module]:
        """The trainable parts, by name; the loop calls this with torch's RNG seeded by the run's seed."""
        raise NotImplementedError

    def ema_parts(self) -> tuple[str, ...]:
        """Parts whose EMA the loop keeps and samples with (the others sample with their last values)."""
        return ()

    def optimizers(self, parts: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per name (checkpointed and resumed by the loop)."""
        return {}

    def setup(self, parts: dict[str, nn.Module], generator: torch.Generator) -> None:
        """Work done once before the first step (and again, identically, on resume), e.g. a fixed fitting sample."""

    def train_step(
        self, parts: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
        batch: torch.Tensor | None, generator: torch.Generator,
    ) -> float:
        """One training step; returns the loss to log (the loop stops on a non-finite value)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The method's own state to checkpoint (beyond parts, optimizers and the loop's generator)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def validate(self, parts: dict[str, nn.Module]) -> dict[str, float]:
        """Numbers logged with the loss, computed on the sampling weights (EMA where kept); deterministic."""
        return {}

    def summary(self, parts: dict[str, nn.Module]) -> dict[str, Any]:
        """Entries added to train.json at the end (on the sampling weights)."""
        return {}

    def elbo(self, parts: dict[str, nn.Module], x0: torch.Tensor, generator: torch.Generator, *,
             levels: int | None = None) -> dict[str, torch.Tensor] | None:
        """The method's variational bound on −log p of every row of x0: (N, D): {"elbo": (N,) nats per row, and
        its terms}, with a discrete decoder over ``levels`` grey levels (None: continuous data); None when the
        method has no bound.  The likelihood stage reports it beside the probability-flow NLL."""
        return None

    # ---- sampling --------------------------------------------------------------------------------------------
    @property
    def noise_dim(self) -> int:
        """The size of the noise x_T a sampler starts from: the data's D (a latent method's latent size)."""
        return self.ctx.dim

    def decode(self, parts: dict[str, nn.Module], x: torch.Tensor) -> torch.Tensor:
        """Samples (B, noise_dim) as data rows (B, D): the identity (a latent method's decoder)."""
        return x

    def sampling_object(self, parts: dict[str, nn.Module], protocol: str) -> Any:
        """What a sampler of ``protocol`` receives: a :class:`ttdm.samplers.Denoiser` for "denoiser"."""
        raise NotImplementedError


def hold_out(data: torch.Tensor, dataset: str, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(fitting rows, validation rows) of ``data`` (N, D): the validation rows are the first max(1, round(f N)) of
    a permutation drawn by a CPU generator seeded by spec_hash(["validation-rows", dataset]), so they depend on the
    dataset alone (every model and seed of a dataset is validated on the same rows); both keep the file's order."""
    n = data.shape[0]
    n_val = max(1, round(float(fraction) * n))
    if not 0 < fraction < 1 or n_val >= n:
        raise ValueError(f"cannot hold out {n_val} validation rows (val_fraction {fraction}) of {n} training rows "
                         f"of dataset {dataset!r}; at least one row must remain for fitting")
    gen = torch.Generator().manual_seed(int(spec_hash(["validation-rows", dataset], 15), 16))
    perm = torch.randperm(n, generator=gen)
    val_idx, fit_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
    return data[fit_idx.to(data.device)], data[val_idx.to(data.device)]
