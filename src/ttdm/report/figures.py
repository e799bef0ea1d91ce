"""Figures from result files: model samples over the data, training-loss curves, and the primary metric against NFE.

Every figure is saved as ``{dataset}_{kind}.pdf`` (for the paper) and ``.png`` (for ``snakemake --report``), with
fixed sizes, fonts and metadata so that the same inputs give the same files. :func:`write_figures` draws the kinds it
is asked for from the files it is given (``ttdm.report.studies.ddpm`` declares both), never anything else.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ttdm.io import load_json  # noqa: E402
from ttdm.report import style  # noqa: E402
from ttdm.report.files import run_key  # noqa: E402
from ttdm.report.style import CURVE_IN, save_figure  # noqa: E402,F401  (re-exported)

PathLike = str | os.PathLike
STYLE = style.RC
PANEL_IN = 1.55  # width and height of one sample panel, inches: four fit on the text width
PANELS_PER_ROW = 4
SHORT_RUN = 0.1  # a model whose last logged iteration is under this fraction of the longest gets its own loss panel
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
    ncol = min(len(names), PANELS_PER_ROW)
    nrow = -(-len(names) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(PANEL_IN * ncol, (PANEL_IN + 0.25) * nrow), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    lo, hi = test[:, :2].min(axis=0), test[:, :2].max(axis=0)
    lo, hi = lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo)  # the view: the data range plus a quarter each side
    for k, (ax, name) in enumerate(zip(axes.flat, names)):
        x = test if name == "data" else samples[name]
        if shape:
            ax.imshow(image_grid(x, shape), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_title(name)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        inside = np.all((x[:, :2] >= lo) & (x[:, :2] <= hi), axis=1)
        ax.scatter(*test[:MAX_POINTS, :2].T, s=1.5, c=style.DATA_COLOR, linewidths=0, label="test data")
        ax.scatter(*x[:MAX_POINTS, :2].T, s=1.5, c=style.color_of(name), linewidths=0, label="samples")
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        outside = int((~inside).sum())
        ax.set_title(name + (f"\n({outside} of {len(x)} outside)" if outside else ""))
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(True)
    fig.suptitle(title)
    fig.tight_layout()
    if not shape:  # below the panels; kept by bbox "tight"
        axes[-1][0].legend(loc="upper left", bbox_to_anchor=(0.0, -0.02), ncol=2, markerscale=4)
    return fig


def plot_loss(losses: dict[str, list[pd.DataFrame]], title: str) -> plt.Figure:
    """Training loss against step per model: mean over seeds (line) and ± one std (band), log y-axis if positive.

    losses: model -> one frame per seed with columns step, loss; steps logged by every seed are used.
    """
    last = {m: max(int(f["step"].max()) for f in frames) for m, frames in losses.items()}
    longest = max(last.values())
    short = [m for m in losses if last[m] < SHORT_RUN * longest]  # e.g. ALS sweeps beside Adam steps
    panels = [[m for m in losses if m not in short]] + ([short] if short else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(CURVE_IN[0] * (1 + 0.6 * (len(panels) - 1)), CURVE_IN[1]),
                             sharey=True, squeeze=False, gridspec_kw={"width_ratios": [1] + [0.6] * (len(panels) - 1)})
    positive = all((f["loss"] > 0).all() for frames in losses.values() for f in frames)
    for ax, models in zip(axes[0], panels):
        for model in models:
            frames = losses[model]
            table = pd.concat([f.set_index("step")["loss"] for f in frames], axis=1, join="inner")  # (steps, seeds)
            mean, std = table.mean(axis=1), table.std(axis=1).fillna(0.0)
            st = style.style_of(model)
            ax.plot(table.index, mean, color=st["color"], lw=1, label=f"{model} ({len(frames)} seeds)",
                    marker=st["marker"] if len(table) <= 12 else None, ms=3)
            ax.fill_between(table.index, mean - std, mean + std, color=st["color"], alpha=0.25, linewidth=0)
        ax.set_xlabel("training step" if ax is axes[0][0] else "iteration (few-iteration runs)")
    if positive:
        style.log_axes(axes[0][0], "y")
    axes[0][0].set_ylabel(r"$\epsilon$-loss")
    fig.suptitle(title)
    fig.tight_layout()
    handles = [h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]]
    labels = [lab for ax in axes[0] for lab in ax.get_legend_handles_labels()[1]]
    fig.legend(handles, labels, ncol=2, loc="upper center", bbox_to_anchor=(0.5, 0.02))  # below; kept by "tight"
    return fig


NFE_LABELS = {"swd": "SWD", "hq_percent": "HQ samples (%)", "fd": "FD (classifier features)"}  # y-axis of the NFE figure, by primary metric


def plot_nfe(metrics: pd.DataFrame, floor: float | None, title: str, *, metric: str = "swd",
             sampler_floor: str | None = None) -> plt.Figure:
    """``metric`` (mean ± std over seeds) against the number of network evaluations for every model and sampler,
    with the data floor as a dashed line (:func:`draw_nfe`), the legend below the axes."""
    fig, ax = plt.subplots(figsize=CURVE_IN)
    handles = draw_nfe(ax, metrics, floor, metric=metric, sampler_floor=sampler_floor)
    ax.set_title(title)
    fig.tight_layout()
    ax.legend(handles=handles, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.25))  # below; kept by "tight"
    return fig


def draw_nfe(ax: plt.Axes, metrics: pd.DataFrame, floor: float | None, *, metric: str = "swd",
             sampler_floor: str | None = None, models: list[str] | None = None) -> list[Any]:
    """Draw ``metric`` (mean, ± one std as a band) against NFE on ``ax`` for every model (``models``: these, in this
    order) and sampler; log-log for a distance, a linear y-axis for a percentage. The model named ``sampler_floor``
    (the exact noise predictor under the same samplers) is drawn as the "sampler floor" in the floors' grey,
    dotted, and the data floor as a dashed line. Returns the legend handles: one per model (colour and marker), the
    floors, and one per sampler (line style), not one per pair. metrics: long format (model, sampler, seed, nfe,
    metric, value)."""
    from matplotlib.lines import Line2D

    sub = metrics[metrics["metric"] == metric]
    stats = sub.groupby(["model", "sampler", "nfe"])["value"].agg(["mean", "std"]).reset_index()
    stats = stats[stats["mean"].notna()]
    log_y = metric not in ("hq_percent",) and bool((stats["mean"] > 0).all())
    # sampler line styles, none of them the floors' dashed and dotted lines
    lines = dict(zip(sorted(stats["sampler"].unique()), ("-", "-.", (0, (3, 1, 1, 1, 1, 1)), (0, (8, 2, 2, 2)),
                                                         (0, (1, 2)), (0, (5, 3)))))
    present = set(stats["model"])
    models = [m for m in (models or sorted(present)) if m in present and m != sampler_floor]
    for model in models + ([sampler_floor] if sampler_floor in present else []):
        is_floor = model == sampler_floor
        st = {"color": style.SAMPLER_FLOOR["color"], "marker": "x"} if is_floor else style.style_of(model)
        name = "sampler floor" if is_floor else model
        for k, (sampler, ls) in enumerate(lines.items()):
            s = stats[(stats["model"] == model) & (stats["sampler"] == sampler)].sort_values("nfe")
            if not len(s):
                continue
            ax.plot(s["nfe"], s["mean"], color=st["color"], marker=st["marker"], ms=3,
                    lw=style.SAMPLER_FLOOR["lw"] if is_floor else 1, ls=style.SAMPLER_FLOOR["ls"] if is_floor else ls,
                    mfc=st["color"] if k == 0 else "white", label=f"{name}, {sampler}")  # the legend uses proxies
            if not is_floor:  # the mean, and ± one std as a band (error bars on a log axis can cross zero)
                spread = s["std"].fillna(0.0)
                lo = (s["mean"] - spread).clip(lower=s["mean"] / 3) if log_y else s["mean"] - spread
                ax.fill_between(s["nfe"], lo, s["mean"] + spread, color=st["color"], alpha=0.15, lw=0)
    handles = [Line2D([], [], color=style.style_of(m)["color"], marker=style.style_of(m)["marker"], ms=3, lw=1,
                      label=m) for m in models]
    if sampler_floor in present:
        handles.append(Line2D([], [], color=style.SAMPLER_FLOOR["color"], marker="x", ms=3,
                              lw=style.SAMPLER_FLOOR["lw"], ls=style.SAMPLER_FLOOR["ls"], label="sampler floor"))
    if floor is not None and np.isfinite(floor) and (floor > 0 or not log_y):
        ax.axhline(floor, label="data floor", **style.FLOOR)
        handles.append(Line2D([], [], label="data floor", **style.FLOOR))
    handles += [Line2D([], [], color="k", lw=1, ls=ls, label=sampler) for sampler, ls in lines.items()]
    if log_y:
        style.log_axes(ax, "x", "y")
    else:
        style.log_axes(ax, "x")
    ax.set_xlabel("network evaluations (NFE)")
    ax.set_ylabel(NFE_LABELS.get(metric, metric))
    return handles


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
    sampler_floor: str | None = None,
) -> list[Path]:
    """Draw the figures ``{dataset}_{kind}`` of ``kinds`` from the given files only; returns the paths (PDF, PNG).

    - samples: first seed of every model (:func:`first_seed_samples` of the samples files), over ``test`` (test.npy),
      viewed with ``meta`` (meta.json);
    - loss: loss.csv files of the runs (runs/{dataset}/{model}/{seed}/loss.csv), mean ± std over seeds per model;
    - nfe: the dataset's sampler-level primary metric (:func:`ttdm.report.claims.primary_metric`: HQ % on mixtures,
      SWD elsewhere) against NFE from the per-setting metrics CSVs, with its value for ``floor`` (floor.csv) dashed;
      the metrics of the model named ``sampler_floor`` (if given) are drawn as the sampler floor.

    A kind whose files are missing (or whose metrics hold neither SWD nor HQ %) is a ValueError naming the figure: a
    declared figure is never skipped.
    """
    from ttdm.report.claims import primary_metric

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
            need("nfe", table is not None and bool(table["metric"].isin(["swd", "hq_percent"]).any()),
                 "no SWD or HQ % in the metrics given")
            metric = primary_metric(table["metric"].unique())
            floors = pd.read_csv(floor) if floor is not None else pd.DataFrame(columns=["metric", "value"])
            at_floor = floors.loc[floors["metric"] == metric, "value"]
            level = float(at_floor.iloc[0]) if len(at_floor) else None
            label = NFE_LABELS.get(metric, metric).split(" (")[0]
            written += save_figure(plot_nfe(table, level, f"{dataset}: {label} vs NFE", metric=metric,
                                            sampler_floor=sampler_floor), out, f"{dataset}_nfe")
    return written
