"""Render the LaTeX paper from jinja2 templates and the results, and compile it with latexmk.

The templates use LaTeX-safe delimiters: blocks ``((* ... *))``, variables ``((( ... )))``, comments
``((= ... =))``; an undefined name is an error (StrictUndefined), never an empty string. The sections are listed
once, in ``paper.tex.j2``: adding a section is adding a template file under ``sections/`` and its name there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2

from ttdm.io import atomic_write
from ttdm.report.context import build_context
from ttdm.report.files import PaperFiles
from ttdm.report.tables import check_latex_text, tex_escape

PathLike = str | os.PathLike
MAIN_TEMPLATE = "paper.tex.j2"
LOG_TAIL_LINES = 40


def make_environment(templates_dir: PathLike) -> jinja2.Environment:
    """A jinja2 environment over ``templates_dir`` with LaTeX-safe delimiters, StrictUndefined and a ``tex``
    filter that escapes LaTeX specials."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        block_start_string="((*", block_end_string="*))",
        variable_start_string="(((", variable_end_string=")))",
        comment_start_string="((=", comment_end_string="=))",
        undefined=jinja2.StrictUndefined, autoescape=False,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["tex"] = tex_escape
    return env


def render_paper(files: PaperFiles, templates_dir: PathLike, config: dict[str, Any], out_dir: PathLike, *,
                 repo: PathLike | None = None) -> Path:
    """Render ``templates_dir``/paper.tex.j2 with :func:`ttdm.report.context.build_context` of ``files`` into
    ``out_dir``/paper.tex, and copy the figures it uses (of ``files.figures``) into out_dir/figures/ and refs.bib.

    ``repo``: where git is asked for the commit (default: the current directory). Returns the path of paper.tex.
    """
    templates, out = Path(templates_dir), Path(out_dir)
    context = build_context(files, config, repo=repo)
    text = make_environment(templates).get_template(MAIN_TEMPLATE).render(**context)
    check_latex_text(out / "paper.tex", text)  # a finding's or table's string with "\t" for "\\t"
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for name in context["figure_files"]:
        shutil.copyfile(files.figure(name), out / "figures" / name)
    shutil.copyfile(templates / "refs.bib", out / "refs.bib")
    return atomic_write(out / "paper.tex", lambda p: p.write_text(text))


def compile_paper(out_dir: PathLike, *, timeout_s: float = 600.0) -> Path:
    """Compile ``out_dir``/paper.tex with ``latexmk -pdf -interaction=nonstopmode -halt-on-error`` (BibTeX runs
    as needed) and return the path of paper.pdf.

    Raises RuntimeError naming the log file, with its LaTeX errors and last lines, when compilation fails, and
    FileNotFoundError when latexmk is not installed.
    """
    out = Path(out_dir)
    latexmk = shutil.which("latexmk")
    if latexmk is None:
        raise FileNotFoundError("latexmk not found on PATH; install TeX Live with latexmk to compile the paper")
    cmd = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"]
    try:
        proc = subprocess.run(cmd, cwd=out, capture_output=True, text=True, timeout=timeout_s)
        failed = proc.returncode != 0 and f"exit status {proc.returncode}"
    except subprocess.TimeoutExpired:
        failed = f"timeout after {timeout_s:g} s"
    pdf, log = out / "paper.pdf", out / "paper.log"
    if failed or not pdf.is_file():
        lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
        errors = [ln for ln in lines if ln.startswith("!")]
        tail = "\n".join(errors + ["..."] + lines[-LOG_TAIL_LINES:])
        raise RuntimeError(f"latexmk failed ({failed or 'no paper.pdf written'}); log file: {log}\n{tail}")
    return pdf
