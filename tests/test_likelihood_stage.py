"""The likelihood stage: a run's test NLL by the probability-flow ODE against the mixture's true NLL (its floor)."""

from __future__ import annotations

import pandas as pd

from ttdm.stages.data import prepare_dataset
from ttdm.stages.likelihood import floor_nll, run_nll
from ttdm.stages.train import train

from test_train import make_spec

SPEC = {"n_max": 100, "solver": "rk4", "steps": 20, "rtol": 1e-5, "atol": 1e-5, "n_probes": 1, "exact_max_dim": 8,
        "seed": 0, "device": "cpu", "threads": 1}


def test_a_trained_run_is_above_its_floor_and_a_blank_model_far_above(tmp_path):
    data = tmp_path / "data"
    prepare_dataset({"name": "8gaussians", "kind": "8gaussians", "n_train": 2000, "n_test": 300, "n_floor": 100,
                     "seed": 0}, data)
    schedule = {"kind": "linear", "T": 200, "beta_start": 1e-4, "beta_end": 0.1}
    spec = {**make_spec(steps=400, batch_size=256, lr=3e-3, checkpoint_every=400, log_every=100),
            "dataset": "8gaussians", "schedule": schedule}
    spec["model_cfg"] = {"hidden": 64, "depth": 3}
    train(spec, data, tmp_path / "trained")
    train({**spec, "training": {**spec["training"], "steps": 1}}, data, tmp_path / "blank")
    floor = floor_nll({**SPEC, "schedule": schedule}, data_dir=data, out=tmp_path / "floor.csv")
    trained = run_nll(SPEC, run_dir=tmp_path / "trained", data_dir=data, out=tmp_path / "trained.csv")
    blank = run_nll(SPEC, run_dir=tmp_path / "blank", data_dir=data, out=tmp_path / "blank.csv")
    assert floor["nll"] < trained["nll"] < blank["nll"]  # no model beats the true density of the same rows
    assert trained["nfe"] == 20 * 4 and trained["exact_divergence"] == 1.0 and trained["n_points"] == 100
    table = pd.read_csv(tmp_path / "trained.csv")
    assert list(table.columns) == ["dataset", "model", "seed", "metric", "value"]
    assert {"nll", "bpd", "nfe", "wall_s"} <= set(table["metric"])
    assert (tmp_path / "trained.spec.json").is_file()
