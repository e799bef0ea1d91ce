"""The tensor-train defects of issue 9: collapsing ALS, complexity of the engine that runs, D ≥ 21 ranks, the RGD
step size, and the solver's set-up counted as training time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ttdm.methods import tt_solvers
from ttdm.methods.base import Context
from ttdm.methods.regression import RegressionMethod
from ttdm.runs import load_run, make_method
from ttdm.schedules import make_schedule
from ttdm.stages.train import train
from ttdm.tt import algebra, riemannian

SCHEDULE = {"kind": "linear", "T": 100, "beta_start": 1e-4, "beta_end": 0.2}


def tt_spec(dataset: str, optimizer: str = "als", model_cfg: dict | None = None, **training) -> dict:
    spec = {
        "dataset": dataset, "model": f"tt-{optimizer}", "arch": "tt", "seed": 0, "method": "ddpm",
        "model_cfg": model_cfg or {"rank": 4, "degree": 8, "dtype": "float64"},
        "schedule": SCHEDULE, "device": "cpu", "threads": 1,
        "training": {"optimizer": optimizer, "steps": 2, "n_fit": 2000, "n_val": 512, "ema_decay": 0.9,
                     "log_every": 1, "checkpoint_every": 1},
    }
    spec["training"].update(training)
    return spec


@pytest.fixture(scope="module")
def gaussians8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ttdm.stages.data import prepare_dataset

    out = tmp_path_factory.mktemp("data") / "8gaussians"
    prepare_dataset({"name": "8gaussians", "kind": "8gaussians", "n_train": 3000, "n_test": 1000, "n_floor": 200,
                     "seed": 0}, out)
    return out


def _eps_errors(run_dir: Path, data_dir: Path) -> tuple[float, float]:
    """‖ε_θ − ε*‖/‖ε*‖ and ‖σ_t x − ε*‖/‖ε*‖ (the prior alone) on triplets of test.npy."""
    from ttdm.data.mixture import GaussianMixture

    meta = json.loads((data_dir / "meta.json").read_text())
    schedule = make_schedule(SCHEDULE)
    x0 = torch.from_numpy(np.load(data_dir / "test.npy")).double()
    gen = torch.Generator().manual_seed(1)
    i = torch.randint(0, schedule.T, (x0.shape[0],), generator=gen)
    eps = torch.randn(x0.shape, generator=gen, dtype=x0.dtype)
    x_t, t = schedule.q_sample(x0, i, eps), schedule.time(i).to(x0.dtype)
    eps_star = GaussianMixture.from_dict(meta["mixture"]).eps_model(schedule)(x_t, t)
    model = load_run(run_dir).model.eval()
    with torch.no_grad():
        fitted, prior = model(x_t, t).double(), model.prior_eps(x_t, t).double()
    scale = torch.linalg.norm(eps_star)
    return float(torch.linalg.norm(fitted - eps_star) / scale), float(torch.linalg.norm(prior - eps_star) / scale)


# ---- 1. ALS must not collapse to the prior -------------------------------------------------------------------------


def test_als_with_ridge_fits_better_than_the_prior_alone(gaussians8, tmp_path):
    """λ = 0.1 with the default engine: the ε* error ends below that of σ_t x alone (teneva.als_func used to zero
    every core in the first sweep and leave exactly the prior)."""
    record = train(tt_spec("8gaussians", lam=0.1), gaussians8, tmp_path / "run")
    fitted, prior = _eps_errors(tmp_path / "run", gaussians8)
    assert fitted < 0.9 * prior
    assert record["eps_rel_error"] < 0.9 * prior
    state = torch.load(tmp_path / "run" / "checkpoints" / "ckpt.pt", weights_only=True)["method"]
    assert state["engine"] == "torch"  # engine auto is the torch ALS (orthogonal gauge, exact ridge)


def test_auto_engine_is_torch():
    assert tt_solvers.resolve_engine("auto") == "torch" == tt_solvers.resolve_engine("auto", "shared")
    assert tt_solvers.resolve_engine("teneva") == "teneva"
    with pytest.raises(ValueError, match="per_output"):
        tt_solvers.resolve_engine("teneva", "shared")


@pytest.mark.parametrize("optimizer", ["als", "rgd"])
def test_a_collapsed_tensor_train_is_an_error_naming_run_step_and_output(gaussians8, tmp_path, monkeypatch,
                                                                         optimizer):
    def collapse(cores, *args, **kwargs):
        cores = [c.clone() for c in cores]
        cores[1][1] = 0  # output 1's tensor is zero
        return (cores, 1.0, 0.0) if optimizer == "rgd" else cores

    monkeypatch.setattr(tt_solvers.als, "sweep", collapse)
    monkeypatch.setattr(tt_solvers.riemannian, "descent", collapse)
    with pytest.raises(tt_solvers.CollapsedTTError) as err:
        train(tt_spec("8gaussians", optimizer, steps=3), gaussians8, tmp_path / "run")
    message = str(err.value)
    assert f"8gaussians/tt-{optimizer}/0" in message and "step 1" in message and "output(s) 1 of 2" in message
    assert not (tmp_path / "run" / "model.pt").exists()


def test_zero_outputs_sees_zero_cores_and_zero_values():
    cores = algebra.random_cores(3, [4, 4, 4], [2, 2], torch.Generator().manual_seed(0))
    assert tt_solvers.zero_outputs(cores) == []
    cores[2][0] = 0
    assert tt_solvers.zero_outputs(cores) == [0]
    fitted = torch.ones(3, 5)
    fitted[2] = 0
    assert tt_solvers.zero_outputs(cores, fitted=fitted) == [0, 2]
    shared = algebra.random_cores(1, [3, 4, 4], [2, 2], torch.Generator().manual_seed(0))
    shared[0][0, 0, 1] = 0
    assert tt_solvers.zero_outputs(shared, "shared") == [1]
    shared[2][:] = 0
    assert tt_solvers.zero_outputs(shared, "shared") == [0, 1, 2]


# ---- 2. complexity follows the engine and the run's own batch size --------------------------------------------------


def test_complexity_describes_the_engine_and_batch_of_the_run(tmp_path, gaussians8):
    from ttdm.analysis import flops
    from ttdm.stages.complexity import complexity

    cfg = {"rank": 2, "degree": 4}
    auto = flops.model_complexity("tt", cfg, 2, None, 32, n_fit=300, optimizer="als", memory=False)
    torch_als = flops.model_complexity("tt", cfg, 2, None, 32, n_fit=300, optimizer="als", memory=False,
                                       engine="torch")
    teneva = flops.model_complexity("tt", cfg, 2, None, 32, n_fit=300, optimizer="als", engine="teneva")
    assert auto["engine"] == torch_als["engine"] == "torch" and teneva["engine"] == "teneva"
    assert auto["flops_train_step"] == torch_als["flops_train_step"] != teneva["flops_train_step"] > 0
    assert teneva["peak_train_mem_mb"] >= 0
    assert flops.model_complexity("mlp", {}, 2, None, 8, memory=False)["engine"] is None

    mlp = {"arch": "mlp", "model_cfg": {"hidden": 16, "depth": 2}, "dataset": "8gaussians"}
    spec = {"device": "cpu", "batch_size": 256, "memory": False,
            "models": {"small": {**mlp, "batch_size": 8}, "default": mlp,
                       "tt-als": {"arch": "tt", "model_cfg": cfg, "dataset": "8gaussians", "optimizer": "als",
                                  "n_fit": 300, "engine": "teneva", "lam": 0.1}}}
    import pandas as pd

    df = pd.read_csv(complexity(spec, [gaussians8 / "meta.json"], tmp_path)).set_index("model")
    assert df.loc["default", "flops_train_step"] == 32 * df.loc["small", "flops_train_step"]  # 256 vs 8 rows
    assert df.loc["tt-als", "engine"] == "teneva" and df.loc["tt-als", "flops_train_step"] == teneva[
        "flops_train_step"]


def test_complexity_spec_takes_each_runs_resolved_training(quick_config):
    from ttdm import config as cfg
    from ttdm.config.schema import validate_config

    config = validate_config(quick_config)
    spec = cfg.specs.complexity_spec(config)
    assert "batch_size" not in spec  # no spec-level batch size: every model has its own
    assert spec["models"]["unet"]["batch_size"] == 64 and spec["models"]["mlp"]["batch_size"] == 256
    assert spec["models"]["tt-als"]["engine"] == "auto" and spec["models"]["tt-als"]["lam"] == 1e-3
    assert "engine" not in spec["models"]["tt-rgd"]


# ---- 3. D ≥ 21 at degree 8 -------------------------------------------------------------------------------------------


def test_capped_ranks_are_exact_for_many_modes():
    assert algebra.capped_ranks([9] * 65, 4) == [4] * 64  # 9^21 overflows int64
    assert algebra.capped_ranks([8] * 30 + [2], 100) == [8, 64, *[100] * 26, 16, 2]
    assert algebra.capped_ranks([2, 3, 2], 5) == [2, 2]


def test_digits_sized_tt_builds_and_sweeps(tmp_path):
    """D = 64 at degree 8 (the digits): the model builds and one torch ALS sweep runs on a few hundred rows."""
    data = tmp_path / "digits"
    data.mkdir()
    rng = np.random.default_rng(0)
    np.save(data / "train.npy", rng.uniform(-1, 1, (400, 64)).astype(np.float32))
    (data / "meta.json").write_text(json.dumps({"dim": 64, "image_shape": [1, 8, 8]}))
    spec = tt_spec("digits", model_cfg={"rank": 2, "degree": 8, "dtype": "float64"}, steps=1, n_fit=300,
                   n_val=64, engine="torch")
    record = train(spec, data, tmp_path / "run")
    model = load_run(tmp_path / "run").model
    assert model.ranks == [2] * 64 and np.isfinite(record["final_loss"])


# ---- 4. the RGD step size ------------------------------------------------------------------------------------------


@pytest.fixture
def regression():
    gen = torch.Generator().manual_seed(0)
    sizes, ranks = [4, 4, 4], [2, 2]
    x = 2 * torch.rand(300, 3, generator=gen, dtype=torch.float64) - 1
    from ttdm.tt.bases import get_basis

    feats = [get_basis("legendre")(x[:, k], n) for k, n in enumerate(sizes)]
    target = algebra.random_cores(2, sizes, ranks, gen)
    y = algebra.values(target, feats) + 0.01 * torch.randn(2, 300, generator=gen, dtype=torch.float64)
    return algebra.random_cores(2, sizes, ranks, gen), feats, y, ranks


def test_rgd_keeps_the_iterate_when_every_trial_raises_the_loss(regression):
    cores, feats, y, ranks = regression
    before = float(riemannian.mse(cores, feats, y))
    new, alpha, loss = riemannian.descent(cores, feats, y, ranks, 1e6, max_halvings=2)
    assert loss == pytest.approx(before) and float(riemannian.mse(new, feats, y)) == pytest.approx(before)
    assert all(torch.equal(a, b) for a, b in zip(new, cores)) and alpha == 1e6 / 4


def test_rgd_step_is_floored_and_grows_back(regression):
    cores, feats, y, ranks = regression
    _, alpha, _ = riemannian.descent(cores, feats, y, ranks, 1e6, max_halvings=100, min_alpha=1e-3)
    assert alpha >= 1e-3
    _, alpha, _ = riemannian.descent(cores, feats, y, ranks, 0.0, min_alpha=1e-3)
    assert alpha == 1e-3


def test_rgd_solver_recovers_from_a_zero_step(gaussians8):
    spec = tt_spec("8gaussians", "rgd", model_cfg={"rank": 2, "degree": 4, "dtype": "float64"}, n_fit=500)
    data = torch.from_numpy(np.load(gaussians8 / "train.npy"))
    method = make_method(spec, Context(spec=spec, dim=2, image_shape=None, meta={}, data=data, val_data=data))
    assert isinstance(method, RegressionMethod)
    parts = method.build()
    gen = torch.Generator().manual_seed(0)
    method.setup(parts, gen)
    solver = method.solver
    floor = tt_solvers.MIN_STEP * spec["training"].get("step_size", 1.0)
    solver.alpha = 0.0  # a step that underflowed in an older run
    losses = [solver.step(gen) for _ in range(3)]
    assert solver.alpha >= floor and losses[-1] < losses[0] + 1e-12
    solver.alpha = floor
    first = float(riemannian.mse([c.detach() for c in parts["denoiser"].cores], solver.feats, solver.y))
    loss = solver.step(gen)
    assert loss <= first and solver.alpha >= floor  # the trial starts at 2·floor: the step can grow back


# ---- 5. the solver's set-up is training time ------------------------------------------------------------------------


def test_setup_time_counts_as_training_time(gaussians8, tmp_path, monkeypatch):
    original = RegressionMethod.setup

    def slow_setup(self, parts, generator):
        time.sleep(0.4)
        original(self, parts, generator)

    monkeypatch.setattr(RegressionMethod, "setup", slow_setup)
    spec = tt_spec("8gaussians", model_cfg={"rank": 2, "degree": 4, "dtype": "float64"}, n_fit=300)
    whole = train(spec, gaussians8, tmp_path / "whole")
    assert whole["wall_s"] >= 0.4
    train(spec, gaussians8, tmp_path / "split", stop_after=1)
    split = train(spec, gaussians8, tmp_path / "split")  # the resumed process sets up again: real cost
    assert split["resumed_from_step"] == 1 and split["wall_s"] >= 0.8
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["parts"]["denoiser"]
    b = torch.load(tmp_path / "split" / "model.pt", weights_only=True)["parts"]["denoiser"]
    assert all(torch.equal(a[k], b[k]) for k in a)
