"""The sampler floor: sample a Gaussian-mixture dataset with its exact noise predictor ε*, nothing learned.

For a mixture the minimiser of the DDPM loss is known in closed form, ε*(x_t, t) = −σ_t ∇ log p_t(x_t)
(:mod:`ttdm.data.mixture`).  A run of method ``analytic`` (model arch ``mixture_eps``) is that ε* on the run's own
noise schedule, sampled and evaluated like any model under every sampler setting.  Its distance to the data floor is
the sampler's discretisation error alone; a trained model's distance to it is its learning error.

Nothing is trained: the run takes 0 steps (``trains = False``: the config sets ``steps`` to 0), has no optimizer,
no EMA and no validation loss; train.json records ``eps_rel_error`` 0 and the number of mixture components.  The
mixture of the dataset's meta.json (standardised coordinates) is held in the model's buffers, so model.pt carries it
and a finished run is rebuilt from its model.pt alone.  A dataset without a known mixture is refused before any job
starts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

from torch import nn

from ttdm.methods import METHODS
from ttdm.methods.base import Context, Method
from ttdm.options import NoOptions
from ttdm.samplers import Denoiser
from ttdm.schedules import NoiseSchedule, make_schedule


@lru_cache(maxsize=None)
def _mixture_kind(kind: str, options: str) -> bool | None:
    """Whether the dataset ``kind`` with ``options`` (JSON) has a known mixture density (None: it cannot be loaded;
    the config's component checks report that).  Loaders draw nothing, so this is cheap for generated sets."""
    import json

    from ttdm.data import DATASETS

    try:
        return DATASETS.get(kind)(json.loads(options)).mixture is not None
    except (ValueError, OSError, TypeError):
        return None


@METHODS.register("analytic")
class Analytic(Method):
    """The exact ε* of the dataset's Gaussian mixture as the run's only part, ``denoiser``."""

    Options: ClassVar[type] = NoOptions
    trains: ClassVar[bool] = False
    archs: ClassVar[tuple[str, ...] | None] = ("mixture_eps",)

    def __init__(self, options: Any, ctx: Context) -> None:
        super().__init__(options, ctx)
        self.schedule: NoiseSchedule = make_schedule(ctx.spec["schedule"])

    @classmethod
    def dataset_error(cls, options: Any, name: str, entry: dict[str, Any]) -> str | None:
        import json

        from ttdm.config.components import DATASET_KEYS

        kind = entry.get("kind")
        own = {k: v for k, v in entry.items() if k not in DATASET_KEYS}
        if _mixture_kind(str(kind), json.dumps(own, sort_keys=True)) is False:
            return f"it has no known Gaussian-mixture density (kind {kind!r}), so no exact ε* to sample with"
        return None

    # ---- the part ----------------------------------------------------------------------------------------------
    def build(self) -> dict[str, nn.Module]:
        """The mixture_eps model on the run's schedule; training fills it from ``ctx.meta["mixture"]``, a finished
        run's model.pt loads the stored mixture into it (:func:`ttdm.runs.load_run`)."""
        from ttdm.runs import build_model

        spec, ctx = self.ctx.spec, self.ctx
        model = build_model(spec, ctx.dim, ctx.image_shape)
        if not hasattr(model, "set_mixture"):
            raise ValueError(f"method 'analytic' samples the exact ε* of the dataset's mixture: its model needs arch "
                             f"'mixture_eps', not {spec.get('arch')!r}")
        model.set_schedule(self.schedule)
        if ctx.data is not None:  # training: the mixture comes from the data; sampling: from model.pt
            if not ctx.meta.get("mixture"):
                raise ValueError(f"method 'analytic' needs a Gaussian-mixture dataset with a known density; "
                                 f"{ctx.meta.get('name', spec.get('dataset', 'this dataset'))!r} has none")
            model.set_mixture(ctx.meta["mixture"])
        return {"denoiser": model.to(ctx.device)}

    def train_step(self, parts, optimizers, batch, generator) -> float:  # type: ignore[no-untyped-def]
        raise RuntimeError("method 'analytic' has nothing to train: its runs take 0 steps")

    def summary(self, parts: dict[str, nn.Module]) -> dict[str, Any]:
        model = parts["denoiser"]
        return {"eps_rel_error": 0.0, "mixture_components": model.n_components}  # ε* itself: no error

    # ---- sampling --------------------------------------------------------------------------------------------
    def sampling_object(self, parts: dict[str, nn.Module], protocol: str) -> Denoiser:
        return Denoiser(parts["denoiser"], self.schedule)
