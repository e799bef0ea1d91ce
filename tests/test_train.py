"""DDPM loss, the training loop, checkpoints and resume, NaN stops, and loading a finished run."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import ttdm.stages.train as train_mod
from ttdm.methods.base import Context
from ttdm.methods.ddpm import DDPM
from ttdm.methods.regression import RegressionOptions
from ttdm.runs import build_model, load_model, load_run
from ttdm.schedules import make_schedule
from ttdm.stages.train import train

SCHEDULE = {"kind": "linear", "T": 50, "beta_start": 1e-4, "beta_end": 0.2}
MU, STD = np.array([1.0, -1.0]), 0.1  # the 2-D Gaussian training data N(MU, STD² I)


def make_data(path: Path, *, n: int = 512, image: bool = False) -> Path:
    """train.npy and meta.json: 2-D Gaussian points, or 64-D 'images' of shape (1, 8, 8)."""
    rng = np.random.default_rng(0)
    path.mkdir(parents=True, exist_ok=True)
    if image:
        x, meta = rng.uniform(-1, 1, (n, 64)), {"dim": 64, "image_shape": [1, 8, 8]}
    else:
        x, meta = MU + STD * rng.standard_normal((n, 2)), {"dim": 2, "image_shape": None}
    np.save(path / "train.npy", x.astype(np.float32))
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def make_spec(**training) -> dict:
    spec = {
        "dataset": "gauss", "model": "mlp", "arch": "mlp", "model_cfg": {"hidden": 32, "depth": 2, "time_dim": 8},
        "seed": 0, "method": "ddpm", "schedule": SCHEDULE, "device": "cpu", "threads": 1,
        "training": {"steps": 30, "batch_size": 64, "lr": 3e-3, "ema_decay": 0.9, "grad_clip": 1.0,
                     "checkpoint_every": 7, "log_every": 5},
    }
    spec["training"].update(training)
    return spec


def train_killed_at(spec: dict, data: Path, out: Path, step: int, monkeypatch: pytest.MonkeyPatch,
                    **kwargs) -> None:
    """Train ``spec`` into ``out`` (``kwargs``: train's needs, inputs) and "kill" it (KeyboardInterrupt) after its
    ``step``-th EMA update."""
    calls = {"n": 0}
    ema_update = train_mod._ema_update

    def killed(*args):
        ema_update(*args)
        calls["n"] += 1
        if calls["n"] == step:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(train_mod, "_ema_update", killed)
        with pytest.raises(KeyboardInterrupt):
            train(spec, data, out, **kwargs)


def assert_same_parts(a: Path, b: Path, parts: tuple[str, ...]) -> None:
    """The model.pt of runs ``a`` and ``b`` hold the same weights of ``parts``, bit for bit."""
    wa = torch.load(a / "model.pt", weights_only=True)["parts"]
    wb = torch.load(b / "model.pt", weights_only=True)["parts"]
    for part in parts:
        assert all(torch.equal(wa[part][k], wb[part][k]) for k in wa[part]), part


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("data"))


def test_ddpm_loss_matches_hand_computation() -> None:
    T, B = 50, 6
    x0 = torch.randn(B, 3, generator=torch.Generator().manual_seed(1))
    model = lambda x, t: x * t[:, None] - 0.5  # noqa: E731  a fixed "network" ε(x, t) = t x − 1/2
    method = DDPM(RegressionOptions(), Context(spec={"schedule": SCHEDULE}, dim=3, image_shape=None))
    loss = method.loss(model, x0, torch.Generator().manual_seed(7))
    # the same draws by hand: first i, then ε, from one generator; ᾱ from numpy
    g = torch.Generator().manual_seed(7)
    i = torch.randint(0, T, (B,), generator=g).numpy()
    eps = torch.randn(B, 3, generator=g).numpy().astype(np.float64)
    abar = np.cumprod(1 - np.linspace(1e-4, 0.2, T))[i][:, None]
    x_i = np.sqrt(abar) * x0.numpy() + np.sqrt(1 - abar) * eps
    t = ((i + 1) / T)[:, None]
    expected = np.mean((eps - (t * x_i - 0.5)) ** 2)
    assert loss.ndim == 0
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_training_lowers_the_loss_towards_the_optimum(data_dir: Path, tmp_path: Path) -> None:
    spec = make_spec(steps=300, batch_size=128, checkpoint_every=100, log_every=25)
    record = train(spec, data_dir, tmp_path)
    with open(tmp_path / "loss.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(25, 301, 25))
    losses = [float(r["loss"]) for r in rows]
    # the optimal ε-predictor for Gaussian data leaves E_i[α_i² s² / (α_i² s² + σ_i²)] (per coordinate)
    abar = make_schedule(SCHEDULE).alphas_cumprod.numpy()
    optimum = np.mean(abar * STD**2 / (abar * STD**2 + 1 - abar))  # ≈ 0.065
    assert losses[0] > 0.4
    assert 0.7 * optimum < losses[-1] < optimum + 0.06
    assert record["final_loss"] == losses[-1] and record["resumed_from_step"] == 0
    assert record["steps"] == 300 and record["n_params"] > 0 and record["device"]["device"] == "cpu"
    assert json.loads((tmp_path / "spec.json").read_text()) == spec
    assert json.loads((tmp_path / "train.json").read_text())["steps_per_s"] == pytest.approx(300 / record["wall_s"])


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def test_resume_is_bit_identical(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = make_spec()  # 30 steps, checkpoints every 7
    full = tmp_path / "full"
    train(spec, data_dir, full)

    # 1) a "kill" at step 17, between the checkpoints of steps 14 and 21
    parts = tmp_path / "parts"
    train_killed_at(spec, data_dir, parts, 17, monkeypatch)
    assert torch.load(parts / "checkpoints" / "ckpt.pt", weights_only=True)["step"] == 14
    # 2) resume and stop after step 20 (a checkpoint is written there), 3) resume to the end
    assert train(spec, data_dir, parts, stop_after=20) == {"steps_done": 20, "complete": False}
    assert not (parts / "model.pt").exists()
    record = train(spec, data_dir, parts)
    assert record["resumed_from_step"] == 20

    a, b = _weights(full / "checkpoints" / "ckpt.pt"), _weights(parts / "checkpoints" / "ckpt.pt")
    for key in ("parts", "ema"):
        assert a[key]["denoiser"].keys() == b[key]["denoiser"].keys()
        for name in a[key]["denoiser"]:
            assert torch.equal(a[key]["denoiser"][name], b[key]["denoiser"][name]), (key, name)
    opt_a, opt_b = a["optimizers"]["denoiser"], b["optimizers"]["denoiser"]
    for sa, sb in zip(opt_a["state"].values(), opt_b["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(a["generator"], b["generator"]) and torch.equal(a["losses"], b["losses"])
    ma, mb = _weights(full / "model.pt"), _weights(parts / "model.pt")
    assert all(torch.equal(ma["parts"]["denoiser"][k], mb["parts"]["denoiser"][k]) for k in ma["parts"]["denoiser"])

    def loss_column(run: Path) -> list[tuple[str, str]]:
        with open(run / "loss.csv") as fh:
            return [(r["step"], r["loss"]) for r in csv.DictReader(fh)]

    assert loss_column(full) == loss_column(parts)


def test_a_checkpoint_of_another_spec_is_refused(data_dir: Path, tmp_path: Path) -> None:
    spec = make_spec(steps=10, checkpoint_every=5)
    train(spec, data_dir, tmp_path, stop_after=5)
    other = copy.deepcopy(spec)
    other["training"]["lr"] = 1e-2
    ckpt = tmp_path / "checkpoints" / "ckpt.pt"
    before = ckpt.read_bytes()
    with pytest.raises(ValueError, match=rf"{ckpt}.*different spec; delete it"):
        train(other, data_dir, tmp_path)
    assert ckpt.read_bytes() == before


def test_a_diverging_loss_stops_with_the_step(data_dir: Path, tmp_path: Path) -> None:
    spec = make_spec(steps=50, lr=1e12, grad_clip=0)
    with pytest.raises(FloatingPointError, match=r"training loss is (nan|inf) at step \d+ of"):
        train(spec, data_dir, tmp_path)
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "loss.csv").exists()


@pytest.mark.parametrize("image", [False, True])
def test_load_model_round_trip(tmp_path: Path, image: bool) -> None:
    data = make_data(tmp_path / "data", n=64, image=image)
    spec = make_spec(steps=3, batch_size=8, checkpoint_every=3, log_every=1)
    if image:
        spec.update(arch="unet", model="unet", model_cfg={"channels": 8, "time_dim": 16})
    run = tmp_path / "run"
    train(spec, data, run)
    model, loaded_spec = load_model(run)
    assert loaded_spec == spec and not model.training
    # the EMA weights of the last checkpoint, in a freshly built network, give exactly the same outputs
    dim, shape = (64, (1, 8, 8)) if image else (2, None)
    reference = build_model(spec, dim, shape)
    reference.load_state_dict(torch.load(run / "checkpoints" / "ckpt.pt", weights_only=True)["ema"]["denoiser"])
    x, t = torch.randn(4, dim), torch.rand(4)
    with torch.no_grad():
        assert torch.equal(model(x, t), reference(x, t))
    assert load_run(run).dim == dim and load_run(run).image_shape == shape


def test_missing_training_keys_and_model_are_reported(data_dir: Path, tmp_path: Path) -> None:
    spec = make_spec()
    del spec["training"]["ema_decay"]
    with pytest.raises(ValueError, match=r"lacks \['ema_decay'\]"):
        train(spec, data_dir, tmp_path)
    with pytest.raises(FileNotFoundError, match="no trained model"):
        load_model(tmp_path)


# --------------------------------------------------------------------------------------------------------------------
# Tensor-train models: the three optimizers, resume of the solver loop, the isolation target


def tt_spec(optimizer: str, **training) -> dict:
    spec = make_spec(optimizer=optimizer, n_fit=400, n_val=256, log_every=1, checkpoint_every=2, **training)
    spec.update(model="tt", arch="tt", model_cfg={"rank": 2, "degree": 4, "dtype": "float64"})
    return spec


@pytest.mark.parametrize("optimizer,extra", [("adam", {"steps": 40, "lr": 0.02}), ("als", {"steps": 3}),
                                             ("als", {"steps": 3, "engine": "torch"}), ("rgd", {"steps": 6}),
                                             ("rgd", {"steps": 6, "fit_batch": 100, "line_search": False,
                                                      "step_size": 0.1})])
def test_every_tt_optimizer_lowers_the_validation_loss(data_dir, tmp_path, optimizer, extra):
    record = train(tt_spec(optimizer, **extra), data_dir, tmp_path / "run")
    rows = list(csv.DictReader((tmp_path / "run" / "loss.csv").open()))
    assert list(rows[0]) == ["step", "loss", "wall_s", "val_loss"]
    first, last = float(rows[0]["val_loss"]), float(rows[-1]["val_loss"])
    assert last < first and record["val_loss"] == pytest.approx(last)
    assert record["optimizer"] == optimizer and record["eps_rel_error"] is None  # no mixture in meta.json
    run = load_run(tmp_path / "run")  # the sampling weights come back, with the fitted input domain
    stored = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["parts"]["denoiser"]
    assert torch.equal(run.model.lo, stored["lo"])
    assert run.model.sigmas.shape == (SCHEDULE["T"],)


@pytest.mark.parametrize("optimizer", ["als", "rgd"])
def test_tt_solver_resumes_bit_for_bit(data_dir, tmp_path, optimizer):
    spec = tt_spec(optimizer, steps=5, engine="torch")
    train(spec, data_dir, tmp_path / "whole")
    assert train(spec, data_dir, tmp_path / "split", stop_after=2) == {"steps_done": 2, "complete": False}
    record = train(spec, data_dir, tmp_path / "split")
    assert record["resumed_from_step"] == 2
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["parts"]["denoiser"]
    b = torch.load(tmp_path / "split" / "model.pt", weights_only=True)["parts"]["denoiser"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_solver_optimizers_refuse_networks(data_dir, tmp_path):
    with pytest.raises(ValueError, match="fits tensor-train models only"):
        train(make_spec(optimizer="als"), data_dir, tmp_path / "run")
    with pytest.raises(ValueError, match="allowed: adam, sgd, als, rgd"):
        train(make_spec(optimizer="lbfgs"), data_dir, tmp_path / "run2")


def test_eps_star_method_fits_the_exact_noise_predictor(tmp_path):
    from ttdm.data.mixture import GaussianMixture

    data = make_data(tmp_path / "data")
    meta = json.loads((data / "meta.json").read_text())
    meta["mixture"] = GaussianMixture(np.ones(1), MU[None], np.full((1, 2), STD)).to_dict()
    (data / "meta.json").write_text(json.dumps(meta))
    ddpm = train(tt_spec("als", steps=3), data, tmp_path / "ddpm")
    iso = train({**tt_spec("als", steps=3), "method": "eps_star"}, data, tmp_path / "iso")
    # the noiseless target is fitted far better than the noisy DDPM one, and its val loss is the error to ε*
    assert iso["eps_rel_error"] < ddpm["eps_rel_error"]
    assert iso["val_loss"] < 0.2 * ddpm["val_loss"]
    with pytest.raises(ValueError, match="needs a Gaussian-mixture dataset"):
        train({**tt_spec("als", steps=1), "method": "eps_star"}, data_dir_without_mixture(tmp_path), tmp_path / "x")


def data_dir_without_mixture(tmp_path: Path) -> Path:
    return make_data(tmp_path / "plain")
