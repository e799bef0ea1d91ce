"""Paper studies: one module per results section of the paper, each registered in ``STUDIES``.

A study module registers a :class:`Study` (``STUDIES.register(name)(Study(...))``) made of three functions:

- ``outputs(config) -> {command: [files]}``: from the validated config, the tables and figures that each of the
  study's ``ttdm`` commands writes (figures as their PDF; a PNG of the same stem is written beside each). The
  workflow declares these files as the outputs of the study's rules and as inputs of the paper; each command computes
  the same list and writes exactly it (:func:`check_written`), failing with the file named when it cannot.
- ``inputs(config) -> [files]``: the other result files its paper section reads (e.g. the loss landscapes).
- ``context(files, config) -> dict``: its part of the paper templates' context, from the given
  :class:`ttdm.report.files.PaperFiles` only (keys must not clash with another study's; ``figure_files`` lists the
  figures to copy beside the paper).

Adding a study: a module here; the commands that write its tables and figures (``ttdm.cli``) and their rules
(workflow/rules/, whose outputs are ``outputs(config)[command]``); its section template in paper/sections/ and its
name in paper/paper.tex.j2. The paper rule and ``ttdm paper`` loop over the registered studies (:func:`paper_files`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ttdm.registry import Registry

PathLike = str | os.PathLike
STUDIES = Registry("study", "ttdm.report.studies")


def _no_inputs(config: dict[str, Any]) -> list[str]:
    return []


@dataclass(frozen=True)
class Study:
    """A results section of the paper: what it produces, what else it reads, and its template context."""

    outputs: Callable[[dict[str, Any]], dict[str, list[str]]]
    context: Callable[[Any, dict[str, Any]], dict[str, Any]]
    inputs: Callable[[dict[str, Any]], list[str]] = field(default=_no_inputs)


def study_outputs(config: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """``outputs(config)`` of every registered study, by study name."""
    return {name: STUDIES.get(name).outputs(config) for name in STUDIES.names()}


def declared(config: dict[str, Any], command: str) -> list[str]:
    """The files ``ttdm <command>`` writes for ``config``, over every study that declares the command."""
    return [f for outputs in study_outputs(config).values() for f in outputs.get(command, [])]


def paper_files(config: dict[str, Any]) -> dict[str, list[str]]:
    """What ``ttdm paper`` reads, over every registered study: {"tables": results/tables/*, "figures":
    results/figures/*.pdf, "inputs": the studies' other inputs}, each without duplicates, in study order."""
    outputs = [f for study in study_outputs(config).values() for files in study.values() for f in files]
    inputs = [f for name in STUDIES.names() for f in STUDIES.get(name).inputs(config)]
    return {
        "tables": list(dict.fromkeys(f for f in outputs if Path(f).parent.name == "tables")),
        "figures": list(dict.fromkeys(f for f in outputs if Path(f).parent.name == "figures")),
        "inputs": list(dict.fromkeys(inputs)),
    }


def with_png(files: Iterable[PathLike]) -> list[str]:
    """Every figure PDF followed by its PNG; other files as they are."""
    out = []
    for f in map(str, files):
        out += [f, f[: -len(".pdf")] + ".png"] if f.endswith(".pdf") and "/figures/" in f"/{f}" else [f]
    return out


def check_written(declared_files: Iterable[PathLike], written: Iterable[PathLike], command: str) -> None:
    """Fail unless ``written`` are exactly the ``declared_files`` (figure PDFs with their PNGs), by file name.

    The ValueError names what was declared but not written and what was written but not declared, so a figure
    neither goes silently missing from the paper nor appears unannounced.
    """
    want = {Path(f).name for f in with_png(declared_files)}
    got = {Path(f).name for f in written}
    if want != got:
        raise ValueError(f"{command}: the files written differ from the study's declared outputs; declared but not "
                         f"written: {sorted(want - got) or 'none'}; written but not declared: "
                         f"{sorted(got - want) or 'none'}")
