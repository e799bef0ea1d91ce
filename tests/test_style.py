"""The figures' common style (ttdm.report.style): one colour per model in every figure, readable tick labels."""

from __future__ import annotations

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from test_report import draw_figures, make_results
from test_report_tt import record
from ttdm.report import style
from ttdm.report.landscape import plot_landscapes
from ttdm.report.tt_figures import write_tt_figures


@pytest.fixture
def drawn(monkeypatch):
    """Every figure saved while the test runs, as (stem, figure), inspected before it is closed."""
    seen: list[tuple[str, dict, list[str]]] = []

    def inspect(fig, stem):
        colors = {}
        for ax in fig.axes:
            for line in ax.get_lines():
                label = line.get_label()
                if label and not label.startswith("_"):
                    colors.setdefault(label.split(",")[0].split(" ")[0], set()).add(mcolors.to_hex(line.get_color()))
        seen.append((stem, colors, style.overlapping_labels(fig)))

    monkeypatch.setattr(style, "BEFORE_SAVE", [inspect])
    return seen


def tt_runs(tmp_path) -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        rows.append(record(tmp_path, "mlp", "mlp", "adam", seed, swd=0.2, n_params=40000, wall_s=10.0, val_loss=0.26,
                           losses=list(np.linspace(0.5, 0.26, 40))))
        rows.append(record(tmp_path, "tt-als", "tt", "als", seed, swd=0.25, n_params=384, wall_s=1.0, val_loss=0.24,
                           losses=[0.3, 0.25, 0.24, 0.24]))
        rows.append(record(tmp_path, "tt-gd", "tt", "gd", seed, swd=0.3, n_params=384, wall_s=30.0, val_loss=0.238,
                           losses=list(np.geomspace(0.9, 0.238, 1000)), solver="adam"))
    return pd.DataFrame(rows)


def test_a_model_has_one_style_whatever_the_other_models():
    before = style.style_of("mlp")
    assert style.style_of("mlp") == before  # a function of the name only
    assert len({style.color_of(m) for m in ("mlp", "resnet", "unet", "tt")}) == 4
    assert style.color_of("tt-als") == style.color_of("tt")  # a variant keeps its base's colour...
    try:
        style.assign(["res_net", "mlp"])  # the config's models, in config order
        assert style.color_of("res_net") == style.PALETTE[0] and style.color_of("mlp") == style.PALETTE[1]
    finally:
        style.assign([])
    assert style.style_of("mlp") == before


def test_every_figure_keeps_model_colours_and_readable_ticks(tmp_path, drawn):
    root = make_results(tmp_path / "results")
    draw_figures(root, tmp_path / "figures")
    runs = tt_runs(tmp_path / "tt")
    csv = tmp_path / "tt_runs.csv"
    runs.to_csv(csv, index=False)
    write_tt_figures(csv, [f"{d}/loss.csv" for d in runs["run_dir"]], tmp_path / "figures",
                     ["tt_convergence_8gaussians"])
    a = np.linspace(-1, 1, 9)
    surface = pd.DataFrame([{"alpha": x, "beta": y, "loss": 0.2 + 40 * (x * x + y * y)} for x in a for y in a])
    surface.to_csv(tmp_path / "landscape.csv", index=False)
    plot_landscapes([tmp_path / "landscape.csv"] * 2, ["mlp", "tt-als"], tmp_path / "l.pdf", tmp_path / "l.png")
    stems = [stem for stem, _, _ in drawn]
    assert {"8gaussians_samples", "8gaussians_loss", "8gaussians_nfe", "tiny_digits_nfe",
            "tt_convergence_8gaussians", "l"} <= set(stems)
    overlaps = {stem: bad for stem, _, bad in drawn if bad}
    assert not overlaps, f"tick labels overlap: {overlaps}"
    per_model: dict[str, set[str]] = {}
    for _, colors, _ in drawn:
        for name, cs in colors.items():
            per_model.setdefault(name, set()).update(cs)
    for model in ("mlp", "res_net"):
        assert per_model[model] == {style.color_of(model)}, (model, per_model[model])
    assert per_model["data"] == {mcolors.to_hex(style.FLOOR["color"])}  # the data floor, drawn alike everywhere


def test_the_overlap_check_sees_overlapping_labels():
    fig, ax = plt.subplots(figsize=(1.0, 1.0))
    ax.set_xticks(np.arange(10))
    ax.set_xticklabels([f"label{i}" for i in range(10)])
    assert style.overlapping_labels(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(3.0, 2.0))
    ax.plot([10, 1000], [0.31, 0.48])
    style.log_axes(ax, "x", "y")  # under a decade on y: still at least two labels, none overlapping
    assert not style.overlapping_labels(fig)
    assert len([t for t in ax.yaxis.get_ticklabels() if t.get_text()]) >= 2
    plt.close(fig)
