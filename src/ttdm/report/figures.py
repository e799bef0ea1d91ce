"""Figures from result files: model samples over the data, training-loss curves, and a metric against NFE.

Every figure is saved as ``{dataset}_{kind}.pdf`` (for the paper) and ``.png`` (for ``snakemake --report``), with
fixed sizes, fonts and metadata so that the same inputs give the same files. :func:`write_figures` draws the kinds it
is asked for from the files it is given (``ttdm.report.studies.ddpm`` declares both), never anything else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ttdm.io import load_json  # noqa: E402
from ttdm.report.files import run_key  # noqa: E402

PathLike = str | os.PathLike
STYLE = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
         "ytick.labelsize": 7, "figure.dpi": 100, "savefig.dpi": 150, "pdf.fonttype": 42}
PANEL_IN = 2.2  # width and height of one sample panel, inches
CURVE_IN = (3.0, 2.2)  # width and height of a curve figure, inches: two fit side by side on an A4 page
MAX_POINTS = 2000  # points drawn per scatter (the first ones; files stay small)
GRID = 8  # image grids show GRID × GRID samples
KINDS = ("samples", "loss", "nfe")  # {dataset}_{kind}


def split_key(key: str) -> tuple[str, int]:
    """A sampler setting "sampler_steps" (a samples file's stem) → (sampler, steps); names may hold underscores."""
    sampler, _, steps = key.rpartition("_")
    if not sampler or not steps.isdigit():
        raise ValueError(f"sampler setting {key!r} is not of the form 'sampler_steps'")
    return sampler, int(steps)


def pick_key(keys: list[str], main: str | None) -> str:
    """The samples to show: ``main`` when present, else the key with the most steps (ties: first sampler name)."""
    if main is not None and main in keys:
        return main
    return sorted(keys, key=lambda k: (-split_key(k)[1], split_key(k)[0]))[0]


def image_grid(x: np.ndarray, image_shape: list[int], *, n: int = GRID) -> np.ndarray:
    """An (n·H + n − 1, n·W + n − 1) mosaic of the first n² images (channel mean), one-pixel gaps at −1.

    x: (N, C·H·W) flattened images in [−1, 1]; image_shape: [C, H, W].
    """
    c, h, w = image_shape
    k = min(len(x), n * n)
    imgs = np.full((n * n, h, w), -1.0)
    imgs[:k] = x[:k].reshape(k, c, h, w).mean(axis=1)  # (k, H, W)
    padded = np.full((n * n, h + 1, w + 1), -1.0)
    padded[:, :h, :w] = imgs
    mosaic = padded.reshape(n, n, h + 1, w + 1).transpose(0, 2, 1, 3)  # (n, H+1, n, W+1)
    return mosaic.reshape(n * (h + 1), n * (w + 1))[:-1, :-1]


def plot_samples(test: np.ndarray, meta: dict, samples: dict[str, np.ndarray], title: str) -> plt.Figure:
    """One panel per model: model samples over the test data (2-D; first two coordinates for other vectors), or
    8 × 8 image grids with the data first when ``meta["image_shape"]`` is set. samples: model -> (N, D)."""
    shape = meta.get("image_shape")
    names = (["data"] if shape else []) + list(samples)
    fig, axes = plt.subplots(1, len(names), figsize=(PANEL_IN * len(names), PANEL_IN + 0.3), squeeze=False)
    lo, hi = test[:, :2].min(axis=0), test[:, :2].max(axis=0)
    lo, hi = lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo)  # the view: the data range plus a quarter each side
    for ax, name in zip(axes[0], names):
        x = test if name == "data" else samples[name]
        if shape:
            ax.imshow(image_grid(x, shape), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_title(name)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        inside = np.all((x[:, :2] >= lo) & (x[:, :2] <= hi), axis=1)
        ax.scatter(*test[:MAX_POINTS, :2].T, s=2, c="0.75", linewidths=0, label="test data")
        ax.scatter(*x[:MAX_POINTS, :2].T, s=2, c="C0", linewidths=0, label="samples")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        outside = int((~inside).sum())
        ax.set_title(name + (f" ({outside} of {len(x)} outside view)" if outside else ""))
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    fig.suptitle(title)
    fig.tight_layout()
    if not shape:  # below the first panel; kept by bbox "tight"
        axes[0][0].legend(loc="upper left", bbox_to_anchor=(0.0, -0.22), ncol=2, markerscale=3, frameon=False)
    return fig


def plot_loss(losses: dict[str, list[pd.DataFrame]], title: str) -> plt.Figure:
    """Training loss against step per model: mean over seeds (line) and ± one std (band), log y-axis if positive.

    losses: model -> one frame per seed with columns step, loss; steps logged by every seed are used.
    """
    fig, ax = plt.subplots(figsize=CURVE_IN)
    for i, (model, frames) in enumerate(losses.items()):
        table = pd.concat([f.set_index("step")["loss"] for f in frames], axis=1, join="inner")  # (steps, seeds)
        mean, std = table.mean(axis=1), table.std(axis=1).fillna(0.0)
        ax.plot(table.index, mean, color=f"C{i}", lw=1, label=f"{model} ({len(frames)} seeds)")
        ax.fill_between(table.index, mean - std, mean + std, color=f"C{i}", alpha=0.25, linewidth=0)
    if all((f["loss"] > 0).all() for frames in losses.values() for f in frames):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(r"$\epsilon$-loss")
    ax.set_title(title)
    fig.tight_layout()
    ax.legend(frameon=False, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.3))  # below; kept by bbox "tight"
    return fig


def plot_nfe(metrics: pd.DataFrame, floor: float | None, title: str, *, metric: str = "swd") -> plt.Figure:
    """``metric`` (mean ± std over seeds) against the number of network evaluations for every model and sampler,
    log-log, with the data floor as a dashed line. metrics: long format (model, sampler, seed, nfe, metric, value)."""
    sub = metrics[metrics["metric"] == metric]
    stats = sub.groupby(["model", "sampler", "nfe"])["value"].agg(["mean", "std"]).reset_index()
    fig, ax = plt.subplots(figsize=CURVE_IN)
    markers = dict(zip(sorted(stats["sampler"].unique()), "osD^v<>"))
    for i, model in enumerate(sorted(stats["model"].unique())):
        for sampler, marker in markers.items():
            s = stats[(stats["model"] == model) & (stats["sampler"] == sampler)].sort_values("nfe")
            if len(s):
                ax.errorbar(s["nfe"], s["mean"], yerr=s["std"].fillna(0.0), color=f"C{i}", marker=marker, ms=3,
                            lw=1, capsize=2, label=f"{model}, {sampler}")
    if floor is not None and floor > 0:
        ax.axhline(floor, color="0.4", ls="--", lw=1, label="data floor")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("network evaluations (NFE)")
    ax.set_ylabel(metric.upper())
    ax.set_title(title)
    fig.tight_layout()
    ax.legend(frameon=False, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.3))  # below; kept by bbox "tight"
    return fig


def save_figure(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    """Save ``fig`` as out_dir/stem.pdf and .png without time stamps (reproducible bytes), and close it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.pdf", out_dir / f"{stem}.png"]
    fig.savefig(paths[0], metadata={"CreationDate": None}, bbox_inches="tight")
    fig.savefig(paths[1], metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)
    return paths


def first_seed_samples(files: Iterable[PathLike], main: str | None) -> dict[str, tuple[Path, str]]:
    """Per model (in name order), the samples file to show: of its first seed, setting ``main`` when given for that
    seed, else the one with the most steps (:func:`pick_key`). files: samples/{dataset}/{model}/{seed}/{setting}.npz."""
    by_run: dict[tuple[str, int], dict[str, Path]] = {}
    for f in map(Path, files):
        _, model, seed = run_key(f)
        by_run.setdefault((model, seed), {})[f.stem] = f
    chosen: dict[str, tuple[Path, str]] = {}
    for model, seed in sorted(by_run):
        if model not in chosen:
            key = pick_key(sorted(by_run[(model, seed)]), main)
            chosen[model] = (by_run[(model, seed)][key], key)
    return chosen


def write_figures(
    dataset: str,
    out_dir: PathLike,
    *,
    kinds: Iterable[str] = KINDS,
    samples: Iterable[PathLike] = (),
    losses: Iterable[PathLike] = (),
    metrics: Iterable[PathLike] = (),
    floor: PathLike | None = None,
    test: PathLike | None = None,
    meta: PathLike | None = None,
    main: str | None = None,
) -> list[Path]:
    """Draw the figures ``{dataset}_{kind}`` of ``kinds`` from the given files only; returns the paths (PDF, PNG).

    - samples: first seed of every model (:func:`first_seed_samples` of the samples files), over ``test`` (test.npy),
      viewed with ``meta`` (meta.json);
    - loss: loss.csv files of the runs (runs/{dataset}/{model}/{seed}/loss.csv), mean ± std over seeds per model;
    - nfe: SWD against NFE from the per-setting metrics CSVs, with the SWD of ``floor`` (floor.csv) dashed.

    A kind whose files are missing (or whose metrics hold no SWD) is a ValueError naming the figure: a declared
    figure is never skipped.
    """
    out, kinds = Path(out_dir), list(kinds)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown figure kinds {unknown}; known: {', '.join(KINDS)}")

    def need(kind: str, ok: bool, what: str) -> None:
        if not ok:
            raise ValueError(f"figure {dataset}_{kind} cannot be drawn: {what}")

    written: list[Path] = []
    with plt.rc_context(STYLE):
        if "samples" in kinds:
            chosen = first_seed_samples(samples, main)
            need("samples", bool(chosen), "no samples files given")
            need("samples", test is not None and meta is not None, "test.npy and meta.json are both needed")
            drawn = {}
            for model, (path, _) in chosen.items():
                with np.load(path) as npz:
                    drawn[model] = npz["x"]
            keys = sorted({k for _, k in chosen.values()})
            fig = plot_samples(np.load(test), load_json(meta), drawn, f"{dataset}: samples ({', '.join(keys)})")
            written += save_figure(fig, out, f"{dataset}_samples")
        if "loss" in kinds:
            frames: dict[str, list[tuple[int, pd.DataFrame]]] = {}
            for f in map(Path, losses):
                _, model, seed = run_key(f)
                frames.setdefault(model, []).append((seed, pd.read_csv(f)))
            need("loss", bool(frames), "no loss.csv files given")
            ordered = {m: [df for _, df in sorted(frames[m], key=lambda t: t[0])] for m in sorted(frames)}
            written += save_figure(plot_loss(ordered, f"{dataset}: training loss"), out, f"{dataset}_loss")
        if "nfe" in kinds:
            files = sorted(map(Path, metrics))
            table = pd.concat([pd.read_csv(f) for f in files], ignore_index=True) if files else None
            need("nfe", table is not None and bool((table["metric"] == "swd").any()), "no SWD in the metrics given")
            floors = pd.read_csv(floor) if floor is not None else pd.DataFrame(columns=["metric", "value"])
            swd_floor = floors.loc[floors["metric"] == "swd", "value"]
            level = float(swd_floor.iloc[0]) if len(swd_floor) else None
            written += save_figure(plot_nfe(table, level, f"{dataset}: SWD vs NFE"), out, f"{dataset}_nfe")
    return written
