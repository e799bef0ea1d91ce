"""The result files a report command was given, and the only ones it reads.

The workflow passes every file a report command reads on its command line (and declares the same files as the
rule's inputs); these helpers look files up in those lists by their place in the results layout
(docs/design.md), so no command scans ``results/`` for what happens to be there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ttdm.io import load_json

PathLike = str | os.PathLike


def run_key(path: PathLike) -> tuple[str, str, int]:
    """(dataset, model, seed) of a per-run file: runs/{dataset}/{model}/{seed}/<file> and the same under samples/,
    metrics/ (one file per sampler setting)."""
    p = Path(path)
    dataset, model, seed = p.parts[-4:-1] if len(p.parts) >= 4 else ("", "", "")
    if not seed.isdigit():
        raise ValueError(f"{path}: not a per-run file (.../{{dataset}}/{{model}}/{{seed}}/FILE)")
    return dataset, model, int(seed)


def by_dataset(files: Iterable[PathLike]) -> dict[str, Path]:
    """data/{dataset}/FILE (meta.json, test.npy...) by dataset name; a dataset given twice is an error."""
    out: dict[str, Path] = {}
    for f in map(Path, files):
        if f.parent.name in out:
            raise ValueError(f"two files for dataset {f.parent.name!r}: {out[f.parent.name]} and {f}")
        out[f.parent.name] = f
    return out


def read_table(path: PathLike | None) -> pd.DataFrame | None:
    """The CSV at ``path`` with empty cells as NaN ("" is not read as a string), or None when ``path`` is None or
    the table has no rows."""
    if path is None:
        return None
    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return df if len(df) else None


@dataclass
class PaperFiles:
    """The files ``ttdm paper`` reads, as the paper rule lists them.

    tables: results/tables/*.csv and *.tex; figures: results/figures/*.pdf; meta: results/data/{dataset}/meta.json;
    runs: results/runs/{dataset}/{model}/{seed}/train.json (provenance); inputs: other files a study's section reads
    (``ttdm.report.studies``: e.g. the loss landscapes).
    """

    tables: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    meta: list[Path] = field(default_factory=list)
    runs: list[Path] = field(default_factory=list)
    inputs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("tables", "figures", "meta", "runs", "inputs"):
            setattr(self, name, [Path(p) for p in getattr(self, name)])

    def all(self) -> list[Path]:
        return self.tables + self.figures + self.meta + self.runs + self.inputs

    def table(self, name: str) -> Path | None:
        """The table file called ``name`` (e.g. "summary.csv"), or None when it was not given."""
        return next((p for p in self.tables if p.name == name), None)

    def csv(self, stem: str) -> pd.DataFrame | None:
        """Table ``stem``.csv (:func:`read_table`), or None when not given or empty."""
        return read_table(self.table(f"{stem}.csv"))

    def tex(self) -> dict[str, str]:
        """Every LaTeX table given, by stem, in name order."""
        return {p.stem: p.read_text() for p in sorted(self.tables, key=lambda p: p.name) if p.suffix == ".tex"}

    def figure(self, name: str) -> Path | None:
        """The figure file called ``name`` (e.g. "digits_loss.pdf"), or None when it was not given."""
        return next((p for p in self.figures if p.name == name), None)

    def figure_names(self) -> list[str]:
        return sorted(p.name for p in self.figures)

    def meta_of(self, dataset: str) -> dict[str, Any] | None:
        """meta.json of ``dataset``, or None when it was not given."""
        path = by_dataset(self.meta).get(dataset)
        return load_json(path) if path is not None else None

    def missing(self, expected: Iterable[PathLike]) -> list[str]:
        """The ``expected`` files that were not given (compared as normalised paths)."""
        given = {os.path.normpath(p) for p in self.all()}
        return [str(p) for p in expected if os.path.normpath(p) not in given]
