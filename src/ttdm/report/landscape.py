"""The loss-landscape figure: one contour panel per landscape CSV (columns alpha, beta, loss; ``ttdm landscape``).

Each panel shows f(α, β) = L(θ* + α d_1 + β d_2) on its grid with the trained weights θ* (α = β = 0) marked.
Levels are log-spaced when the surface is positive and spans more than a decade (the usual case: the loss grows
fast away from the minimum), linear otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from ttdm.report import style  # noqa: E402

PathLike = str | os.PathLike
PANEL_IN = 2.1  # width and height of one panel, inches
N_LEVELS = 15


def read_surface(csv_path: PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alphas (n_a,), betas (n_b,), loss (n_b, n_a)) from a landscape CSV; loss[j, i] is at (α_i, β_j)."""
    df = pd.read_csv(csv_path)
    missing = {"alpha", "beta", "loss"} - set(df.columns)
    if missing:
        raise ValueError(f"{csv_path}: lacks columns {sorted(missing)}")
    table = df.pivot(index="beta", columns="alpha", values="loss").sort_index().sort_index(axis=1)
    return table.columns.to_numpy(float), table.index.to_numpy(float), table.to_numpy(float)


def contour_levels(loss: np.ndarray, n: int = N_LEVELS) -> tuple[np.ndarray, bool]:
    """(levels, log): n log-spaced levels when min > 0 and max/min > 10, else n linear ones."""
    finite = loss[np.isfinite(loss)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:  # a flat surface: any increasing levels around it
        return np.linspace(lo - 0.5, lo + 0.5, n), False
    if lo > 0 and hi / lo > 10:
        return np.geomspace(lo, hi, n), True
    return np.linspace(lo, hi, n), False


def plot_landscapes(csv_paths: Sequence[PathLike], labels: Sequence[str], out_pdf: PathLike,
                    out_png: PathLike) -> list[PathLike]:
    """One contour subplot per CSV (titled by ``labels``), saved as ``out_pdf`` and ``out_png`` (dpi 150) without
    time stamps, atomically; the figure is closed afterwards.  Returns the two paths."""
    if len(csv_paths) != len(labels) or not csv_paths:
        raise ValueError(f"plot_landscapes needs one label per CSV; got {len(csv_paths)} CSVs, {len(labels)} labels")
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(1, len(csv_paths), figsize=(PANEL_IN * len(csv_paths), PANEL_IN), squeeze=False)
        try:
            for ax, path, label in zip(axes[0], csv_paths, labels):
                alphas, betas, loss = read_surface(path)
                levels, log = contour_levels(loss)
                norm = LogNorm(levels[0], levels[-1]) if log else None
                cs = ax.contour(alphas, betas, np.ma.masked_invalid(loss), levels=levels, norm=norm, cmap="viridis",
                                linewidths=0.8)
                bar = fig.colorbar(cs, ax=ax, shrink=0.8)
                if log:  # readable log ticks on the colour bar (at most five, plain labels)
                    bar.ax.set_yscale("log")
                    style.readable_log(bar.ax, "y")
                else:
                    bar.locator = plt.MaxNLocator(5)
                    bar.update_ticks()
                ax.plot([0.0], [0.0], marker="*", color="black", markersize=8, ls="none")  # θ*
                ax.set_xlabel(r"$\alpha$")
                ax.set_ylabel(r"$\beta$")
                ax.set_title(str(label))
                ax.set_aspect("equal")
            fig.tight_layout()
            style.save_pair(fig, out_pdf, out_png)
        finally:
            plt.close(fig)
    return [out_pdf, out_png]
