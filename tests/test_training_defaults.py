"""Three training defaults (issue 9): the EMA warm-up, validation rows held out of the training split, and the
analytic head start ``prior: gaussian`` of every architecture."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import ttdm.stages.train as train_mod
from ttdm.methods.regression import RegressionMethod
from ttdm.models import MODELS
from ttdm.runs import build_model, load_run
from ttdm.schedules import make_schedule
from ttdm.stages.train import ema_decay, hold_out, train

from test_train import SCHEDULE, make_data, make_spec


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("data"))


def _flat(state: dict) -> torch.Tensor:
    return torch.cat([v.double().reshape(-1) for k, v in state.items() if k != "sigmas"])


# ---- 1. the EMA warm-up ---------------------------------------------------------------------------------------

def test_ema_decay_is_warmed_up() -> None:
    assert ema_decay(0.995, 1) == pytest.approx(2 / 11)
    assert ema_decay(0.995, 30) == pytest.approx(31 / 40)
    assert ema_decay(0.995, 10**6) == 0.995  # the configured decay once (1 + n)/(10 + n) exceeds it
    assert ema_decay(0.0, 5) == 0.0


def test_the_ema_after_n_steps_is_the_warmed_up_recursion(data_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_spec(ema_decay=0.995, checkpoint_every=30)  # 30 steps
    weights = []  # θ_n after each step n, as the loop hands them to the EMA update
    update = train_mod._ema_update
    model0 = build_model(spec, 2, None)
    names = [name for name, _ in model0.named_parameters()]  # the order of the loop's parameter lists

    def recording(ema, model, decay):
        weights.append({k: v.detach().clone() for k, v in zip(names, model, strict=True)})
        update(ema, model, decay)

    monkeypatch.setattr(train_mod, "_ema_update", recording)
    train(spec, data_dir, tmp_path)
    assert len(weights) == 30
    theta0 = {k: v.double() for k, v in model0.state_dict().items()}
    ema = dict(theta0)  # buffers stay as built: the EMA copies them
    for n, theta in enumerate(weights, start=1):  # e_n = d_n e_{n−1} + (1 − d_n) θ_n, d_n = min(d, (1 + n)/(10 + n))
        d = min(0.995, (1 + n) / (10 + n))
        ema.update({k: d * ema[k] + (1 - d) * theta[k].double() for k in theta})
    ckpt = torch.load(tmp_path / "checkpoints" / "ckpt.pt", weights_only=True)
    for k, v in ckpt["ema"]["denoiser"].items():
        torch.testing.assert_close(v.double(), ema[k], rtol=1e-5, atol=1e-6)
    # the share of the initial weights left in the EMA: Π d_n (0.995³⁰ ≈ 0.86 without the warm-up)
    assert math.prod(min(0.995, (1 + n) / (10 + n)) for n in range(1, 31)) < 1e-7
    # so the EMA of a 30-step run is close to the raw weights, not to the initial ones
    raw, avg, init = _flat(ckpt["parts"]["denoiser"]), _flat(ckpt["ema"]["denoiser"]), _flat(theta0)
    assert torch.linalg.norm(avg - raw) < 0.25 * torch.linalg.norm(raw - init)


# ---- 2. validation rows held out of the training split --------------------------------------------------------

def _rows(x: torch.Tensor) -> set[bytes]:
    return {r.tobytes() for r in x.detach().cpu().numpy()}


def test_hold_out_splits_by_dataset_alone() -> None:
    data = torch.arange(200 * 2, dtype=torch.float32).reshape(200, 2)
    fit, val = hold_out(data, "gauss", 0.1)
    assert val.shape == (20, 2) and fit.shape == (180, 2)
    assert not _rows(fit) & _rows(val) and _rows(fit) | _rows(val) == _rows(data)
    assert torch.equal(hold_out(data, "gauss", 0.1)[1], val)  # deterministic
    assert not torch.equal(hold_out(data, "other", 0.1)[1], val)  # another dataset, other rows
    assert torch.all(fit[1:, 0] > fit[:-1, 0]) and torch.all(val[1:, 0] > val[:-1, 0])  # the file's order
    assert _rows(hold_out(data, "gauss", 0.05)[1]) < _rows(val)  # a smaller fraction: a subset of the rows
    with pytest.raises(ValueError, match="at least one row must remain"):
        hold_out(data[:1], "gauss", 0.1)


def test_no_training_batch_draws_a_validation_row_and_all_runs_share_them(data_dir: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, dict] = {}
    make_method, triplets = train_mod.make_method, RegressionMethod.triplets

    def recording_make_method(spec, ctx):
        seen[current]["ctx"] = ctx
        return make_method(spec, ctx)

    def recording_triplets(self, x0, generator, **kwargs):
        seen[current]["x0"].append(x0.clone())
        return triplets(self, x0, generator, **kwargs)

    monkeypatch.setattr(train_mod, "make_method", recording_make_method)
    monkeypatch.setattr(RegressionMethod, "triplets", recording_triplets)
    runs = {"mlp-0": ({}, 0), "mlp-1": ({}, 1),
            "resnet-0": ({"arch": "resnet", "model": "resnet", "model_cfg": {"hidden": 16, "blocks": 1}}, 0)}
    for current, (change, seed) in runs.items():
        seen[current] = {"x0": []}
        spec = make_spec(steps=20, batch_size=64, n_val=100, checkpoint_every=20)
        spec.update(change, seed=seed)
        record = train(spec, data_dir, tmp_path / current)
        ctx = seen[current]["ctx"]
        fit, val = _rows(ctx.data), _rows(ctx.val_data)
        assert len(val) == round(0.1 * 512) and len(fit) + len(val) == 512 and not fit & val
        assert (record["n_fit_rows"], record["n_val_rows"]) == (len(fit), len(val))
        batches = [x for x in seen[current]["x0"] if x.shape[0] == 64]
        validation = [x for x in seen[current]["x0"] if x.shape[0] == 100]
        assert len(batches) == 20 and len(validation) == 1  # the validation triplets are drawn once
        for x in batches:
            assert _rows(x) <= fit  # every training row is a fitting row, never a validation row
        assert _rows(validation[0]) <= val  # and validation uses the held-out rows only
    first = seen["mlp-0"]["ctx"].val_data
    for name in runs:
        assert torch.equal(seen[name]["ctx"].val_data, first), name  # the same rows for every seed and model


def test_validation_needs_the_held_out_rows() -> None:
    from ttdm.methods.base import Context
    from ttdm.methods.ddpm import DDPM
    from ttdm.methods.regression import RegressionOptions

    method = DDPM(RegressionOptions(), Context(spec={"schedule": SCHEDULE, "dataset": "g"}, dim=2, image_shape=None,
                                               data=torch.zeros(8, 2)))
    with pytest.raises(ValueError, match="held-out rows"):
        method.validation_triplets()


# ---- 3. the analytic head start of every architecture ---------------------------------------------------------

ARCHS = [("mlp", 3, None, {"hidden": 16, "depth": 2, "time_dim": 8}),
         ("resnet", 3, None, {"hidden": 16, "blocks": 2, "time_dim": 8}),
         ("unet", 64, (1, 8, 8), {"channels": 8, "time_dim": 16})]


@pytest.mark.parametrize(("arch", "dim", "shape", "hparams"), ARCHS)
def test_a_gaussian_prior_adds_sigma_t_x_to_the_network(arch, dim, shape, hparams) -> None:
    schedule = make_schedule(SCHEDULE)
    _, sigma = schedule.alpha_sigma(torch.arange(schedule.T))
    torch.manual_seed(0)
    plain = MODELS.get(arch)(dim, shape, **hparams)
    torch.manual_seed(0)
    prior = MODELS.get(arch)(dim, shape, **hparams, prior="gaussian")
    prior.set_sigmas(sigma)
    assert torch.equal(prior.sigmas, sigma.float())
    prior.load_state_dict({**plain.state_dict(), "sigmas": prior.sigmas})  # the same network weights
    i = torch.tensor([0, 7, 23, 49, 12])
    x, t = torch.randn(5, dim), schedule.time(i).float()
    with torch.no_grad():
        torch.testing.assert_close(prior(x, t) - sigma[i].float()[:, None] * x, plain(x, t), rtol=1e-5, atol=1e-5)
        # between grid times σ(t) is interpolated linearly
        mid = (schedule.time(torch.tensor([3])) + schedule.time(torch.tensor([4]))).float() / 2
        torch.testing.assert_close(prior(x[:1], mid) - plain(x[:1], mid), (sigma[3] + sigma[4]).float() / 2 * x[:1])


@pytest.mark.parametrize(("arch", "dim", "shape", "hparams"), ARCHS)
def test_prior_none_is_the_default_and_leaves_the_network_unchanged(arch, dim, shape, hparams) -> None:
    torch.manual_seed(0)
    model = MODELS.get(arch)(dim, shape, **hparams)
    torch.manual_seed(0)
    explicit = MODELS.get(arch)(dim, shape, **hparams, prior="none")
    assert MODELS.options(arch)().prior == "none" and model.prior == "none"
    assert "sigmas" not in model.state_dict()  # the stored state is today's
    x, t = torch.randn(4, dim), torch.rand(4)
    out = torch.randn(4, dim)
    assert model.add_prior(x, t, out) is out  # no arithmetic at all: today's outputs, bit for bit
    with torch.no_grad():
        assert torch.equal(model(x, t), explicit(x, t))
        if arch == "mlp":  # the forward pass written out as before the option existed
            assert torch.equal(model(x, t), model.net(torch.cat([x, model.time(t)], dim=1)))
    assert MODELS.options("tt")().prior == "gaussian"


def test_a_saved_run_with_a_gaussian_prior_samples_identically(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data", n=64)
    spec = make_spec(steps=3, batch_size=8, checkpoint_every=3, log_every=1)
    spec["model_cfg"] = {**spec["model_cfg"], "prior": "gaussian"}
    train(spec, data, tmp_path / "run")
    run = load_run(tmp_path / "run")
    schedule = make_schedule(SCHEDULE)
    _, sigma = schedule.alpha_sigma(torch.arange(schedule.T))
    assert torch.equal(run.model.sigmas, sigma.float())
    blob = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert torch.equal(blob["parts"]["denoiser"]["sigmas"], sigma.float())  # stored with the weights
    # a network built without any schedule (a placeholder table) samples as the trained one once loaded
    reference = build_model(spec, 2, None)
    assert reference.sigmas.shape == (1,)
    reference.load_state_dict(torch.load(tmp_path / "run" / "checkpoints" / "ckpt.pt",
                                         weights_only=True)["ema"]["denoiser"])
    x, t = torch.randn(6, 2), torch.rand(6)
    with torch.no_grad():
        assert torch.equal(run.model(x, t), reference(x, t))
        assert torch.equal(run.model(x, t), load_run(tmp_path / "run").model(x, t))
    assert json.loads((tmp_path / "run" / "spec.json").read_text())["model_cfg"]["prior"] == "gaussian"
    assert np.isfinite(json.loads((tmp_path / "run" / "train.json").read_text())["val_loss"])
