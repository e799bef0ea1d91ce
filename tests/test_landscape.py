"""Tests of the loss-landscape experiment: filter-normalised directions, the surface, and runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ttdm.cli import main
from ttdm.stages.data import prepare_dataset
from ttdm.analysis.landscape import filter_normalized_direction, landscape, loss_surface
from ttdm.models import MODELS
from ttdm.report.landscape import plot_landscapes
from ttdm.stages.train import train

DATA_SPEC = {"name": "8gaussians", "kind": "8gaussians", "n_train": 500, "n_test": 200, "n_floor": 200, "seed": 0}
TRAINING = {"steps": 30, "batch_size": 64, "lr": 0.002, "ema_decay": 0.9, "grad_clip": 1.0, "checkpoint_every": 30,
            "log_every": 10}
RUN_SPECS = {
    "mlp": {"dataset": "8gaussians", "model": "mlp", "arch": "mlp", "model_cfg": {"hidden": 32, "depth": 2},
            "seed": 0, "method": "ddpm", "schedule": {"kind": "linear", "T": 100}, "training": TRAINING,
            "device": "cpu", "threads": 1},
    "tt": {"dataset": "8gaussians", "model": "tt", "arch": "tt",
           "model_cfg": {"rank": 2, "degree": 4, "dtype": "float64"}, "seed": 0, "method": "ddpm",
           "schedule": {"kind": "linear", "T": 100},
           "training": {**TRAINING, "optimizer": "als", "steps": 2, "checkpoint_every": 1, "log_every": 1,
                        "n_fit": 2000},
           "device": "cpu", "threads": 1},
}
JSON_KEYS = {"model", "arch", "dataset", "seed", "n", "span", "n_points", "loss_at_minimum"}


def small_models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(3, 5), nn.LayerNorm(5), nn.Linear(5, 2))
    tt = MODELS.get("tt")(2, None, rank=2, degree=4, dtype="float64")
    return {"mlp": mlp, "tt": tt}


@pytest.mark.parametrize("name", ["mlp", "tt"])
def test_direction_filter_norms(name):
    model = small_models()[name]
    d = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    params = list(model.parameters())
    assert len(d) == len(params)
    for p, u in zip(params, d):
        assert u.shape == p.shape and u.dtype == p.dtype
        if p.ndim < 2:
            assert torch.count_nonzero(u) == 0
        else:
            torch.testing.assert_close(u.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1))
            assert not torch.allclose(u, p.detach())  # random, not the weights themselves
    if name == "tt":  # cores (P, r, n, s): one filter per output tensor p, P = D = 2
        assert all(p.ndim == 4 and p.shape[0] == 2 for p in params)
    again = filter_normalized_direction(model, torch.Generator().manual_seed(1))
    assert all(torch.equal(u, v) for u, v in zip(d, again))


@pytest.mark.parametrize("name", ["mlp", "tt"])
def test_surface_restores_parameters_and_matches_at_origin(name):
    model = small_models()[name]
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, 3 if name == "mlp" else 2, generator=gen)
    t = torch.rand(64, generator=gen) * 0.9 + 0.1
    y = torch.randn(64, 2, generator=gen)

    @torch.no_grad()
    def loss_fn() -> float:
        out = model(x) if name == "mlp" else model(x, t)
        return float(((y - out) ** 2).mean())

    before = [p.detach().clone() for p in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]
    d1 = filter_normalized_direction(model, gen)
    d2 = filter_normalized_direction(model, gen)
    grid = [-2.0, -0.5, 0.0, 0.7, 3.0]
    surface = loss_surface(model, loss_fn, d1, d2, grid, grid[::-1])
    assert surface.shape == (5, 5) and np.isfinite(surface).all()
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p.detach(), q)
    assert all(torch.equal(b, c) for b, c in zip(model.buffers(), buffers))
    assert surface[2, 2] == loss_fn()
    assert np.unique(surface).size > 1


def test_surface_is_the_closed_form_quadratic_of_a_linear_model():
    """y = W x without bias, MSE: L(W + αA + βB) = mean((R − αU − βV)²), R = Y − XWᵀ, U = XAᵀ, V = XBᵀ."""
    rng = np.random.default_rng(0)
    m, d_in, d_out = 200, 4, 3
    x = rng.standard_normal((m, d_in))
    w_true = rng.standard_normal((d_out, d_in))
    y = x @ w_true.T + 0.1 * rng.standard_normal((m, d_out))
    w_fit = np.linalg.lstsq(x, y, rcond=None)[0].T  # (d_out, d_in): the least-squares minimum
    model = nn.Linear(d_in, d_out, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w_fit))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def loss_fn() -> float:
        return float(((yt - model(xt)) ** 2).mean())

    gen = torch.Generator().manual_seed(3)
    (a,), (b,) = filter_normalized_direction(model, gen), filter_normalized_direction(model, gen)
    alphas, betas = np.linspace(-1.5, 1.5, 7), np.linspace(-1.0, 1.0, 5)
    surface = loss_surface(model, loss_fn, [a], [b], alphas, betas)

    r = y - x @ w_fit.T
    u, v = x @ a.numpy().T, x @ b.numpy().T
    n = r.size
    c0, c_a, c_b = (r * r).sum() / n, -2 * (r * u).sum() / n, -2 * (r * v).sum() / n
    c_aa, c_ab, c_bb = (u * u).sum() / n, 2 * (u * v).sum() / n, (v * v).sum() / n
    al, be = np.meshgrid(alphas, betas, indexing="ij")
    q = c0 + c_a * al + c_b * be + c_aa * al**2 + c_ab * al * be + c_bb * be**2
    np.testing.assert_allclose(surface, q, rtol=1e-10, atol=1e-12)
    assert abs(c_a) < 1e-10 and abs(c_b) < 1e-10  # at the least-squares minimum the gradient vanishes
    assert (surface >= surface[3, 2] - 1e-12).all()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("landscape")
    data = root / "data"
    prepare_dataset(DATA_SPEC, data)
    runs = {}
    for name, spec in RUN_SPECS.items():
        train(spec, data, root / "runs" / name)
        runs[name] = root / "runs" / name
    return data, runs


@pytest.mark.parametrize("name", ["mlp", "tt"])
def test_landscape_end_to_end(trained, tmp_path, name):
    data, runs = trained
    df = landscape(runs[name], data, n=5, span=0.5, n_points=256, seed=0)
    assert list(df.columns) == ["alpha", "beta", "loss"] and len(df) == 25
    np.testing.assert_allclose(np.unique(df["alpha"]), np.linspace(-0.5, 0.5, 5))
    assert np.isfinite(df["loss"]).all()
    origin = df[(df["alpha"] == 0) & (df["beta"] == 0)]["loss"].item()
    assert origin == df.attrs["loss_at_minimum"]
    assert df["loss"].max() > origin  # moving away from the trained weights raises the loss somewhere
    again = landscape(runs[name], data, n=5, span=0.5, n_points=256, seed=0)
    pd.testing.assert_frame_equal(df, again)  # seeded: directions and triplets are reproducible

    out = tmp_path / f"{name}.csv"
    assert main(["landscape", "--run", str(runs[name]), "--data", str(data), "--out", str(out), "--n", "5",
                 "--span", "0.5", "--points", "256", "--seed", "0"]) == 0
    written = pd.read_csv(out)
    pd.testing.assert_frame_equal(written, df, check_exact=False, rtol=1e-12)
    record = json.loads(out.with_suffix(".json").read_text())
    assert set(record) == JSON_KEYS
    assert record["model"] == name and record["arch"] == RUN_SPECS[name]["arch"] and record["dataset"] == "8gaussians"
    assert (record["n"], record["span"], record["n_points"], record["seed"]) == (5, 0.5, 256, 0)
    assert record["loss_at_minimum"] == pytest.approx(origin, rel=1e-12)


def test_landscape_figure(trained, tmp_path):
    data, runs = trained
    csvs = []
    for name in ("mlp", "tt"):
        csvs.append(tmp_path / f"{name}.csv")
        main(["landscape", "--run", str(runs[name]), "--data", str(data), "--out", str(csvs[-1]), "--n", "5",
              "--points", "128"])
    pdf, png = tmp_path / "fig" / "a.pdf", tmp_path / "fig" / "a.png"
    plot_landscapes(csvs, ["mlp", "tt"], pdf, png)
    assert pdf.read_bytes()[:4] == b"%PDF" and png.read_bytes()[:4] == b"\x89PNG"
    out = tmp_path / "figures" / "landscape.pdf"
    assert main(["landscape-figure", "--csv", *map(str, csvs), "--labels", "mlp", "tt", "--out", str(out)]) == 0
    assert out.is_file() and out.with_suffix(".png").is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["landscape.pdf", "landscape.png"]  # no temp files left
    with pytest.raises(ValueError):
        plot_landscapes(csvs, ["only one"], pdf, png)


def test_landscape_triplets_are_drawn_from_the_held_out_validation_rows(tmp_path, monkeypatch):
    """The surface is a validation loss: its fixed triplets use only the rows the training loop holds out of
    train.npy (the loop's ``hold_out``), never a row the run was fitted on."""
    from ttdm.analysis import landscape as land
    from ttdm.methods.regression import RegressionMethod
    from ttdm.methods.base import hold_out

    assert land.hold_out is hold_out  # one rule, shared with the training loop
    data = tmp_path / "data"
    prepare_dataset(DATA_SPEC, data)
    x_train = torch.from_numpy(np.load(data / "train.npy").astype(np.float32))
    fit, val = hold_out(x_train, "8gaussians", 0.1)
    seen: list[torch.Tensor] = []
    triplets = RegressionMethod.triplets

    def spy(self, x0, generator, **kwargs):
        seen.append(x0.clone())
        return triplets(self, x0, generator, **kwargs)

    monkeypatch.setattr(RegressionMethod, "triplets", spy)
    for name in ("mlp", "tt"):
        seen.clear()
        x_t, t, target = land._fixed_triplets(RUN_SPECS[name], data, 400, seed=0)
        assert x_t.shape == (400, 2) and len(seen) == 1
        rows = {tuple(r.tolist()) for r in seen[0]}
        assert rows <= {tuple(r.tolist()) for r in val}  # every point from the validation rows ...
        assert not rows & {tuple(r.tolist()) for r in fit}  # ... none from the fitting rows
        assert len(rows) > 20  # drawn with replacement from the 50 validation rows
    other = {**RUN_SPECS["mlp"], "training": {**TRAINING, "val_fraction": 0.3}}
    seen.clear()
    land._fixed_triplets(other, data, 400, seed=0)
    val30 = {tuple(r.tolist()) for r in hold_out(x_train, "8gaussians", 0.3)[1]}
    assert {tuple(r.tolist()) for r in seen[0]} <= val30  # the run's own val_fraction
