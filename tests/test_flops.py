"""FLOP counts and complexity measurements (ttdm.flops, ttdm.bench.complexity)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ttdm.analysis import flops
from ttdm.runs import build_model


def _tt(dim: int, **cfg):
    return build_model({"arch": "tt", "model_cfg": cfg, "seed": 0}, dim, None)


def _batch(n: int, dim: int):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, dim, generator=gen), torch.rand(n, generator=gen)


@pytest.mark.parametrize("layout", ["per_output", "shared"])
@pytest.mark.parametrize("rank", [1, 2, 4])
@pytest.mark.parametrize("dim", [2, 3])
def test_tt_forward_contraction_matches_flop_counter(layout, rank, dim):
    """FlopCounterMode counts only the einsums/matmuls: exactly B (contraction + output) of the analytic terms."""
    model = _tt(dim, rank=rank, degree=5, layout=layout)
    x, t = _batch(7, dim)
    terms = flops.tt_forward_terms(model.sizes, model.ranks, model.cores[0].shape[0], layout, dim)
    assert flops.measured_flops(model, x, t) == 7 * (terms["contraction"] + terms["output"])
    assert flops.tt_forward_flops(model.sizes, model.ranks, model.cores[0].shape[0], layout, dim) == sum(
        terms.values()
    )
    assert terms["basis"] > 0 and terms["prior"] == 2 * dim
    assert (terms["output"] > 0) == (layout == "shared")


@pytest.mark.parametrize("layout", ["per_output", "shared"])
def test_tt_forward_is_quadratic_in_rank(layout):
    """Uncapped ranks: the forward count is an exact quadratic in r with positive curvature (O(r²))."""
    dim, degree = 4, 32
    counts = []
    for rank in range(dim, dim + 10):  # r_0 of the shared layout is capped at D: start there
        model_sizes = [dim, *([degree] * (dim + 1))] if layout == "shared" else [degree] * (dim + 1)
        n_tt = 1 if layout == "shared" else dim
        ranks = [min(rank, dim), *([rank] * dim)] if layout == "shared" else [rank] * dim
        counts.append(flops.tt_forward_flops(model_sizes, ranks, n_tt, layout, dim))
    second = [counts[i + 1] - 2 * counts[i] + counts[i - 1] for i in range(1, len(counts) - 1)]
    assert len(set(second)) == 1 and second[0] > 0
    # the quadratic term dominates: doubling the rank almost quadruples the count
    model = _tt(dim, rank=8, degree=degree, layout=layout)
    model2 = _tt(dim, rank=16, degree=degree, layout=layout)
    n_tt = model.cores[0].shape[0]
    f1 = flops.tt_forward_flops(model.sizes, model.ranks, n_tt, layout, dim)
    f2 = flops.tt_forward_flops(model2.sizes, model2.ranks, n_tt, layout, dim)
    assert 3.0 < f2 / f1 < 4.0


def test_mlp_forward_matches_closed_form():
    """Measured MLP FLOPs = 2 B Σ in·out over every Linear, the time-embedding MLP included."""
    dim, batch = 3, 5
    model = build_model({"arch": "mlp", "model_cfg": {"hidden": 24, "depth": 3, "time_dim": 16}, "seed": 0}, dim, None)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 4 + 2  # 3 hidden + output, and the two layers of the time MLP
    assert sum(1 for m in model.time.modules() if isinstance(m, nn.Linear)) == 2
    closed = 2 * batch * sum(m.in_features * m.out_features for m in linears)
    x, t = _batch(batch, dim)
    assert flops.measured_flops(model, x, t) == closed
    # forward + backward of a linear stack: the backward costs twice the forward, except that no input gradient
    # is needed for the time MLP's first layer (its input, the sinusoidal embedding, depends on no parameter)
    step = flops.measured_flops(model, x, t, backward=True)
    first = model.time.net[0]
    assert step == 3 * closed - 2 * batch * first.in_features * first.out_features


@pytest.mark.parametrize("layout", ["per_output", "shared"])
def test_solver_formulas_bound_the_counted_products(layout):
    """The counted matrix products of a sweep/iteration are most of the analytic count (which adds QR, SVD,
    solves and elementwise work that FlopCounterMode does not see)."""
    from ttdm.tt import als, riemannian

    dim = 2
    model = _tt(dim, rank=4, degree=8, layout=layout, dtype="float64")
    x, t = _batch(1000, dim)
    feats, y = model.regression(x, t, torch.randn(1000, dim, generator=torch.Generator().manual_seed(1)))
    cores = [c.detach() for c in model.cores]
    n_tt, rows = y.shape
    with FlopCounterMode(display=False) as counter:
        als.sweep(cores, feats, y)
    ratio = counter.get_total_flops() / flops.als_sweep_flops(model.sizes, model.ranks, n_tt, rows)
    assert 0.85 < ratio <= 1.0
    with FlopCounterMode(display=False) as counter:
        riemannian.descent(cores, feats, y, model.ranks, 1.0, line_search=False)
    ratio = counter.get_total_flops() / flops.rgd_iteration_flops(model.sizes, model.ranks, n_tt, rows)
    assert 0.6 < ratio <= 1.0
    # more Armijo trials cost more; the Gram matrices make ALS far costlier than an RGD iteration at rank 4
    assert flops.rgd_iteration_flops(model.sizes, model.ranks, n_tt, rows, trials=3) > flops.rgd_iteration_flops(
        model.sizes, model.ranks, n_tt, rows
    )
    assert flops.als_sweep_flops(model.sizes, model.ranks, n_tt, rows) > flops.rgd_iteration_flops(
        model.sizes, model.ranks, n_tt, rows
    )


def test_dense_costs():
    assert flops.qr_flops(10, 3) == round(2 * (2 * 10 * 9 - 2 * 27 / 3))  # 2 (2 m n² − (2/3) n³) for m ≥ n
    assert flops.svd_flops(3, 10) == flops.svd_flops(10, 3) == 6 * 10 * 9 + 20 * 27
    assert flops.solve_flops(3) == 18 + 18


@pytest.mark.parametrize(
    ("arch", "cfg", "optimizer"),
    [
        ("mlp", {"hidden": 32, "depth": 2}, None),
        ("resnet", {"hidden": 32, "blocks": 1}, "adam"),
        ("tt", {"rank": 2, "degree": 4}, "adam"),
        ("tt", {"rank": 2, "degree": 4}, "als"),
        ("tt", {"rank": 2, "degree": 4, "layout": "shared"}, "rgd"),
    ],
)
def test_model_complexity_positive(arch, cfg, optimizer):
    out = flops.model_complexity(arch, cfg, 2, None, 32, n_fit=300, optimizer=optimizer)
    assert out["optimizer"] == (optimizer or "adam")
    for key in ("n_params", "flops_forward", "flops_train_step"):
        assert isinstance(out[key], int) and out[key] > 0, key
    assert out["peak_train_mem_mb"] >= 0
    assert out["flops_train_step"] > out["flops_forward"]


def test_model_complexity_rejects_solver_for_networks():
    with pytest.raises(ValueError, match="tensor-train"):
        flops.model_complexity("mlp", {}, 2, None, 8, optimizer="als", memory=False)


def test_complexity_csv(tmp_path):
    from ttdm.stages.complexity import COMPLEXITY_COLUMNS, complexity
    from ttdm.stages.data import prepare_dataset

    prepare_dataset({"name": "8gaussians", "kind": "8gaussians", "n_train": 500, "n_test": 200, "n_floor": 200,
                     "seed": 0}, tmp_path / "data" / "8gaussians")
    meta = json.loads((tmp_path / "data" / "8gaussians" / "meta.json").read_text())
    assert meta["dim"] == 2
    tt = {"arch": "tt", "dataset": "8gaussians", "n_fit": 300}
    spec = {
        "device": "cpu",
        "batch_size": 32,
        "models": {
            "mlp": {"arch": "mlp", "model_cfg": {"hidden": 16, "depth": 2}, "dataset": "8gaussians"},
            "tt-als": {**tt, "model_cfg": {"rank": 2, "degree": 4}, "optimizer": "als"},
            "tt-rgd": {**tt, "model_cfg": {"rank": 4, "degree": 4}, "optimizer": "rgd"},
            "tt-gd": {**tt, "model_cfg": {"rank": 4, "layout": "shared"}},
        },
    }
    path = complexity(spec, [tmp_path / "data" / "8gaussians" / "meta.json"], tmp_path / "bench")
    df = pd.read_csv(path)
    assert path.name == "complexity.csv" and list(df.columns) == list(COMPLEXITY_COLUMNS)
    assert list(df["model"]) == ["mlp", "tt-als", "tt-rgd", "tt-gd"]
    assert list(df["optimizer"]) == ["adam", "als", "rgd", "adam"]
    assert df.loc[0, ["rank", "degree", "layout"]].isna().all()
    assert list(df["rank"][1:]) == [2, 4, 4] and list(df["degree"][1:]) == [4, 4, 8]
    assert list(df["layout"][1:]) == ["per_output", "per_output", "shared"]
    assert (df[["n_params", "flops_forward", "flops_train_step"]] > 0).all().all()
    assert (df["peak_train_mem_mb"] >= 0).all() and df["device"].notna().all()
