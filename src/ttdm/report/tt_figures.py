"""Figures of the tensor-train experiments, from results/tables/tt_runs.csv and the base TT runs' loss.csv files.

- ``tt_convergence_{dataset}``: validation loss against iterations and against wall time, one line per optimizer
  (every seed) of the base TT model — for datasets where several optimizers trained it;
- ``tt_rank``: validation loss and SWD against rank for every optimizer and basis size of the swept dataset(s), with
  the networks' values as horizontal lines;
- ``tt_isolation``: relative L2 error to ε* against parameter count, fitted to ε* and trained on the DDPM loss.
PDF for the paper, PNG for ``snakemake --report``. Which of them exist follows from the runs' specs
(:func:`ttdm.report.tt_records.layout`); ``ttdm.report.studies.tensor_train.outputs`` declares the same list.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from ttdm.report import style  # noqa: E402
from ttdm.report.style import CURVE_IN, RC, save_figure  # noqa: E402
from ttdm.report.tt_records import grid, is_tt, isolation, layout  # noqa: E402

PathLike = str | os.PathLike


def plot_convergence(runs: pd.DataFrame, dataset: str, loss_csv: Callable[[str], Path]) -> plt.Figure | None:
    """Validation loss of the base TT runs on ``dataset``: one panel per optimizer against its own iterations (ALS
    sweeps, RGD steps and Adam steps differ by orders of magnitude), and one against wall time shared by all;
    ``loss_csv(run_dir)`` is the run's loss.csv. None when fewer than two optimizers trained it."""
    base = runs[(runs["dataset"] == dataset) & is_tt(runs) & (runs["method"] == "ddpm") & runs["tag"].isna()
                & (runs["swept"] == "{}")]
    if base["optimizer"].nunique() < 2:
        return None
    optimizers = sorted(base["optimizer"].unique())
    n = len(optimizers) + 1
    fig, axes = plt.subplots(1, n, figsize=(style.TEXT_WIDTH_IN, CURVE_IN[1]), sharey=True,
                             gridspec_kw={"width_ratios": [1] * (n - 1) + [1.4]})
    for ax, opt in zip(axes, optimizers):
        st = style.style_of(opt)
        for r in base[base["optimizer"] == opt].sort_values("seed").itertuples(index=False):
            log = pd.read_csv(loss_csv(r.run_dir))
            first = r.seed == base.loc[base["optimizer"] == opt, "seed"].min()
            few = len(log) <= 12
            ax.plot(log["step"], log["val_loss"], color=st["color"], lw=1, marker=st["marker"] if few else None,
                    ms=3)
            axes[-1].plot(log["wall_s"], log["val_loss"], color=st["color"], lw=1, label=opt if first else None,
                          marker=st["marker"] if few else None, ms=3)
        solver = str(base.loc[base["optimizer"] == opt, "solver"].iloc[0]) if "solver" in base else opt
        ax.set_xlabel(f"{opt} iteration")
        ax.set_title(f"{opt} ({solver})" if solver != opt else opt)
        ax.xaxis.set_major_locator(plt.MaxNLocator(4, integer=True))
    axes[0].set_ylabel("validation loss")
    axes[-1].set(xlabel="training time (s)")
    style.log_axes(axes[-1], "x")
    axes[-1].legend()
    fig.suptitle(f"{dataset}: convergence of the TT optimizers")
    fig.tight_layout()
    return fig


def plot_rank(runs: pd.DataFrame) -> plt.Figure | None:
    g = grid(runs)
    if not len(g):
        return None
    fig, axes = plt.subplots(1, 2, figsize=(style.TEXT_WIDTH_IN, CURVE_IN[1]))
    degrees = sorted(g["degree"].unique())
    for (ds, opt, deg), h in g.groupby(["dataset", "optimizer", "degree"], sort=True):
        st = style.style_of(opt)
        kw = dict(color=st["color"], marker=st["marker"], ms=3, lw=1, label=f"{opt}, n={int(deg)}",
                  ls="-" if deg == degrees[0] else "--", mfc=st["color"] if deg == degrees[0] else "white")
        axes[0].plot(h["rank"], h["val_loss_mean"], **kw)
        axes[1].plot(h["rank"], h["swd_mean"], **kw)
    nets = runs[runs["dataset"].isin(set(g["dataset"])) & runs["arch"].isin(["mlp", "resnet"])
                & (runs["method"] == "ddpm") & runs["tag"].isna() & (runs["swept"] == "{}")]  # the main networks
    for model, h in nets.groupby("model", sort=True):
        for ax, col in zip(axes, ("val_loss", "swd")):
            ax.axhline(h[col].mean(), color=style.color_of(model), ls=style.REFERENCE_LS, lw=1, label=f"{model}")
    floor = g["swd_floor"].mean() if "swd_floor" in g else None
    if floor is not None and floor > 0:
        axes[1].axhline(floor, label="data floor", **style.FLOOR)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
    axes[0].set(xlabel="TT rank r", ylabel="validation loss")
    axes[1].set(xlabel="TT rank r", ylabel="SWD (ddpm samples)")
    style.log_axes(axes[1], "y")
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(f"{', '.join(sorted(set(g['dataset'])))}: rank and basis size")
    fig.tight_layout()
    return fig


def plot_isolation(runs: pd.DataFrame) -> plt.Figure | None:
    iso = isolation(runs)
    if not len(iso):
        return None
    fig, ax = plt.subplots(figsize=(CURVE_IN[0] * 1.2, CURVE_IN[1]))
    for opt, h in iso.groupby(["arch", "optimizer"], sort=True):
        label = h["model"].iloc[0] if h["arch"].iloc[0] != "tt" else f"tt, {opt[1]}"
        st = style.style_of(h["model"].iloc[0] if h["arch"].iloc[0] != "tt" else opt[1])
        ax.plot(h["n_params"], h["iso_error"], marker=st["marker"], ms=3, lw=1, color=st["color"],
                label=f"{label}: fit to ε*")
        ax.plot(h["n_params"], h["ddpm_error"], marker=st["marker"], mfc="white", ms=3, lw=1, ls="--",
                color=st["color"], label=f"{label}: DDPM loss")
    ax.set(xlabel="parameters", ylabel=r"$\|\epsilon_\theta - \epsilon^*\| / \|\epsilon^*\|$")
    style.log_axes(ax, "x", "y")
    fig.tight_layout()
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_title(f"{', '.join(sorted(set(iso['dataset'])))}: error against the exact ε*")
    return fig


def figure_stems(runs: pd.DataFrame) -> list[str]:
    """The figures these records give: tt_convergence_{dataset}, tt_rank, tt_isolation (:func:`layout`)."""
    lay = layout(runs)
    return ([f"tt_convergence_{ds}" for ds in lay["convergence"]] + (["tt_rank"] if lay["rank"] else [])
            + (["tt_isolation"] if lay["isolation"] else []))


def write_tt_figures(runs_csv: PathLike, losses: Iterable[PathLike], out_dir: PathLike,
                     figures: Iterable[str]) -> list[Path]:
    """Draw exactly ``figures`` (stems, e.g. tt_rank) into ``out_dir`` as PDF and PNG; returns the paths written.

    losses: the loss.csv files of the runs the convergence figures draw. A ValueError names a declared figure the
    records do not give, a figure they give that is not declared, and a run whose loss.csv was not given.
    """
    runs = pd.read_csv(runs_csv, keep_default_na=False, na_values=[""])
    wanted, drawable = list(figures), figure_stems(runs)
    if sorted(wanted) != sorted(drawable):
        raise ValueError(f"{runs_csv}: the runs give the TT figures {drawable or 'none'}, the study declares "
                         f"{wanted or 'none'}; declared but not drawable: {sorted(set(wanted) - set(drawable))}, "
                         f"drawable but not declared: {sorted(set(drawable) - set(wanted))}")
    loss_files = {Path(f).parent: Path(f) for f in losses}

    def loss_csv(run_dir: str) -> Path:
        if Path(run_dir) not in loss_files:
            raise ValueError(f"the loss.csv of {run_dir} (a convergence run) was not given (--losses)")
        return loss_files[Path(run_dir)]

    out = Path(out_dir)
    plots = {"tt_rank": lambda: plot_rank(runs), "tt_isolation": lambda: plot_isolation(runs)}
    written: list[Path] = []
    with plt.rc_context(RC):
        for stem in wanted:
            if stem.startswith("tt_convergence_"):
                fig = plot_convergence(runs, stem[len("tt_convergence_"):], loss_csv)
            else:
                fig = plots[stem]()
            if fig is None:
                raise ValueError(f"{stem}: nothing to draw from {runs_csv}")
            written += save_figure(fig, out, stem)
    return written
