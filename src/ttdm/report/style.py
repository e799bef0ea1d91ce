"""One look for every figure of the paper: a fixed colour and marker per model (and per optimizer), the data floor
and the sampler floor drawn the same way everywhere, font sizes that match the paper's text, readable log axes, and
reproducible vector PDFs.

Colours and markers are a function of the *name* only (:func:`style_of`): a model keeps its colour in every figure,
whatever the other models of that figure and whatever the plotting order. The built-in architecture and optimizer
names (``DEFAULT``) have fixed palette entries; when the config's model names are known (``assign(names)``), they
take the palette's entries in config order instead. A variant "base-suffix" (tt-als, tt-rank8-rgd) takes its base's
colour and a marker of its own; any other name a stable hash of the name.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, NullLocator  # noqa: E402

from ttdm.io import atomic_write  # noqa: E402

PathLike = str | os.PathLike
TEXT_PT = 9  # figure text: the paper is set in 11 pt with \small captions; figures are included at natural size
RC = {"font.size": TEXT_PT, "axes.titlesize": TEXT_PT, "axes.labelsize": TEXT_PT, "legend.fontsize": TEXT_PT - 1,
      "xtick.labelsize": TEXT_PT - 1, "ytick.labelsize": TEXT_PT - 1, "figure.dpi": 100, "savefig.dpi": 150,
      "pdf.fonttype": 42, "axes.spines.top": False, "axes.spines.right": False, "legend.frameon": False}
TEXT_WIDTH_IN = 6.3  # A4 with 2.4 cm margins
CURVE_IN = (3.1, 2.3)  # one curve figure: two fit side by side on the text width
# tab10 without its grey, which is kept for data and floors
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
MARKERS = ("o", "s", "D", "^", "v", "<", ">", "p", "P", "X")
DATA_COLOR = "0.75"  # test data under samples
FLOOR = {"color": "0.3", "ls": "--", "lw": 1.0}  # data floor: the metric of a fresh true sample
SAMPLER_FLOOR = {"color": "0.3", "ls": ":", "lw": 1.0}  # sampler floor: the best any sampler setting reaches
REFERENCE_LS = "-."  # a network's value drawn as a reference line in a TT figure (in the network's colour)
DEFAULT = {"mlp": 0, "resnet": 1, "unet": 2, "tt": 3, "als": 3, "rgd": 4, "gd": 6, "adam": 6, "eps_star": 5}
_ASSIGNED: dict[str, int] = dict(DEFAULT)
# called with every figure just before it is saved (tests register layout checks here)
BEFORE_SAVE: list[Callable[[plt.Figure, str], None]] = []


def assign(names: Iterable[str]) -> None:
    """Give ``names`` (the config's main models, in config order) the palette's entries in that order; a listed
    variant's base (tt for tt-als) shares its entry, and the default names that none of them took (resnet, the
    optimizers) keep their default entry when it is free, else the next free one, so no two get the same colour."""
    _ASSIGNED.clear()
    for i, name in enumerate(dict.fromkeys(names)):
        _ASSIGNED[name] = i
    for name in list(_ASSIGNED):
        _ASSIGNED.setdefault(name.split("-")[0], _ASSIGNED[name])
    used = set(_ASSIGNED.values())
    for index in sorted(set(DEFAULT.values())):
        group = [n for n, i in DEFAULT.items() if i == index]
        taken = [_ASSIGNED[n] for n in group if n in _ASSIGNED]
        if taken:
            chosen = taken[0]
        else:
            chosen = index if index not in used else min(i for i in range(len(PALETTE) * 4) if i not in used)
        for n in group:
            _ASSIGNED.setdefault(n, chosen)
        used.add(chosen)


def _hash(name: str, n: int) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % n


def style_of(name: str) -> dict[str, str]:
    """{"color", "marker"} of a model (or optimizer) name: the same in every figure."""
    if name in _ASSIGNED:
        i = _ASSIGNED[name]
        return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)]}
    base = name.split("-")[0]
    color = PALETTE[_ASSIGNED[base] % len(PALETTE)] if base in _ASSIGNED else PALETTE[_hash(name, len(PALETTE))]
    return {"color": color, "marker": MARKERS[_hash(name, len(MARKERS))]}


def color_of(name: str) -> str:
    return style_of(name)["color"]


def _format(v: float, _pos: object = None) -> str:
    """A log tick's label in plain notation where short (0.01, 20, 1000), else as a power of ten."""
    if v <= 0:
        return ""
    text = f"{v:g}"
    if "e" in text:
        mant, exp = text.split("e")
        return f"$10^{{{int(exp)}}}$" if mant == "1" else f"${mant}\\cdot10^{{{int(exp)}}}$"
    return text


def readable_log(ax: plt.Axes, which: str = "y", max_ticks: int = 5) -> None:
    """Log ticks that do not collide: labelled ticks at 1, (1, 2, 5) or (1..9) × 10^k, the densest choice that gives
    at least two labels in view and at most ``max_ticks``, plain labels, unlabelled minor ticks."""
    axis = ax.yaxis if which == "y" else ax.xaxis
    lo, hi = ax.get_ylim() if which == "y" else ax.get_xlim()
    if not (lo > 0 and hi > lo):
        return
    chosen = None
    for subs in ((1.0,), (1.0, 2.0, 5.0), (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)):
        ticks = [m * 10.0**k for k in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
                 for m in subs]
        if len([t for t in ticks if lo <= t * (1 + 1e-9) and t <= hi * (1 + 1e-9)]) >= 2:
            chosen = subs
            break
    if chosen is None:  # under a tenth of a decade in view: evenly spaced plain ticks
        axis.set_major_locator(MaxNLocator(3))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        axis.set_minor_locator(NullLocator())
        axis.set_minor_formatter(NullFormatter())
        return
    numticks = max_ticks if chosen == (1.0,) else 30
    axis.set_major_locator(LogLocator(base=10.0, subs=chosen, numticks=numticks))
    axis.set_major_formatter(FuncFormatter(_format))
    axis.set_minor_locator(LogLocator(base=10.0, subs=np.arange(2, 10) * 1.0, numticks=30))
    axis.set_minor_formatter(NullFormatter())
    ticks = [t for t in axis.get_major_locator().tick_values(lo, hi) if lo <= t * (1 + 1e-9) <= hi * (1 + 2e-9)]
    if len(ticks) > max_ticks:  # crowded: label every k-th tick only
        keep = ticks[:: int(np.ceil(len(ticks) / max_ticks))]
        axis.set_major_formatter(FuncFormatter(lambda v, _: _format(v) if any(np.isclose(v, k) for k in keep)
                                               else ""))


def log_axes(ax: plt.Axes, *which: str) -> None:
    """Log scale and :func:`readable_log` ticks on the given axes ("x", "y")."""
    for w in which:
        (ax.set_yscale if w == "y" else ax.set_xscale)("log")
    for w in which:
        readable_log(ax, w)


def overlapping_labels(fig: plt.Figure) -> list[str]:
    """Pairs of tick labels of one axis whose drawn extents overlap, as text ("ax 0 x: '0.3' / '0.4'")."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found = []
    for i, ax in enumerate(fig.axes):
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = [t for t in axis.get_ticklabels(which="both") if t.get_visible() and t.get_text()]
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
            for a in range(len(boxes)):
                for b in range(a + 1, len(boxes)):
                    (ta, ba), (tb, bb) = boxes[a], boxes[b]
                    if ba.overlaps(bb) and ba.width > 0 and bb.width > 0:
                        found.append(f"axes {i} {name}: {ta!r} / {tb!r}")
    return found


def _before_save(fig: plt.Figure, stem: str) -> None:
    for hook in BEFORE_SAVE:
        hook(fig, stem)


def save_pair(fig: plt.Figure, pdf: PathLike, png: PathLike) -> list[Path]:
    """Save ``fig`` as a vector PDF and a PNG (dpi 150), atomically and without time stamps, and close it."""
    try:
        _before_save(fig, Path(pdf).stem)
        atomic_write(pdf, lambda p: fig.savefig(p, format="pdf", metadata={"CreationDate": None},
                                                bbox_inches="tight"))
        atomic_write(png, lambda p: fig.savefig(p, format="png", metadata={"Software": None}, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return [Path(pdf), Path(png)]


def save_figure(fig: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    """Save ``fig`` as out_dir/stem.pdf and .png (:func:`save_pair`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return save_pair(fig, out_dir / f"{stem}.pdf", out_dir / f"{stem}.png")
