"""The paper reads like a paper: sections in order, findings first, tables instead of enumerations, an abstract with
computed numbers, and the grid at a glance (on the fake results tree of test_report)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from test_report import CONFIG, TEMPLATES, draw_figures, make_results, paper_files, run_tables
from ttdm.report import findings, overview
from ttdm.report.paper import compile_paper, render_paper

SECTIONS = ["Introduction", "Background", "Experimental setup", "Results: DDPM baselines", "Limitations",
            "Conclusion"]
APPENDIX = ["The complete grid and its settings", "Per-dataset figures", "Benchmarks", "Provenance"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = make_results(tmp_path_factory.mktemp("results"))
    run_tables(root)
    draw_figures(root, root / "figures")
    out = tmp_path_factory.mktemp("paper")
    tex = render_paper(paper_files(root), TEMPLATES, CONFIG, out, repo=out).read_text()
    return root, out, tex


def test_sections_in_order_with_the_appendix_last(rendered):
    _, _, tex = rendered
    titles = re.findall(r"\\section\{([^}]*)\}", tex)
    body, appendix = tex.split("\\appendix", 1)
    assert [t for t in titles if f"\\section{{{t}}}" in body] == SECTIONS
    assert [t for t in titles if f"\\section{{{t}}}" in appendix] == APPENDIX
    assert "\\paragraph{Findings.}" in body.split("\\section{Results: DDPM baselines}")[1].split("\\begin{table}")[0]


def test_abstract_counts_networks_and_states_computed_results(rendered):
    _, _, tex = rendered
    abstract = tex.split("\\begin{abstract}")[1].split("\\end{abstract}")[0]
    assert "trains 2 neural networks in 8 training runs on 2 datasets" in " ".join(abstract.split())
    # the networks' HQ share on the mixtures (both 90.5 %, res_net misses modes: no "cover every mode")
    assert "the networks put 90.5--90.5\\,\\% of their samples within three standard deviations of a mode (data " \
           "floor at least" in " ".join(abstract.split())
    # DDIM is within 10 % of its best at 10 steps: 100 / 10 times fewer NFE than ddpm_100
    assert "10.0 times fewer network" in " ".join(abstract.split())


def test_tables_replace_enumerations(rendered):
    _, _, tex = rendered
    body = tex.split("\\appendix", 1)[0]
    assert "\\label{tab:modes}" in body and "\\label{tab:nfe}" in body and "\\label{tab:grid}" in body
    modes = body.split("\\label{tab:modes}")[0].rsplit("\\begin{tabular}", 1)[1]
    assert r"\texttt{8gaussians} & $8/8$ ($90.5$\,\%) & $7.50/8$ ($90.5$\,\%)" in modes
    nfe = body.split("\\label{tab:nfe}")[0].rsplit("\\begin{tabular}", 1)[1]
    assert r"\texttt{8gaussians} & \texttt{ddim} & $10$ & $10$" in nfe
    # no generated paragraph names more than five models
    text = re.sub(r"\\begin\{(table|figure)\}.*?\\end\{\1\}", "", body, flags=re.S)
    for paragraph in re.split(r"\n\s*\n", text):
        named = set(re.findall(r"\\texttt\{(mlp|res\\_net)\}", paragraph))
        assert len(named) <= 5


def test_findings_name_the_best_model_and_the_largest_gap(rendered):
    root, _, _ = rendered
    summary = pd.read_csv(root / "tables" / "summary.csv")
    found = findings.ddpm_findings(summary, "ddpm", 100)
    assert 2 <= len(found) <= 4
    assert found[0] == (r"By SWD, the best model is \texttt{mlp} on $1$ and \texttt{res\_net} on $1$ of the $2$ "
                        "datasets with several models.")
    assert r"\texttt{tiny\_digits}, where \texttt{mlp}'s SWD is $3.00$ times \texttt{res\_net}'s" in found[1]
    assert findings.nfe_saving(summary, "ddpm", 100) == pytest.approx(10.0)


def test_grid_overview_counts_networks_and_tt_models_apart():
    config = {"seeds": [0, 1], "models": {"mlp": {"arch": "mlp"}, "tt": {"arch": "tt"},
                                          "tt-als": {"arch": "tt"}, "tt-rank2-als": {"arch": "tt"}},
              "optimizers": {"als": {"optimizer": "als", "steps": 4, "log_every": 1}},
              "grid": [{"datasets": ["a", "b"], "models": ["mlp"]},
                       {"datasets": ["a"], "models": ["tt-als"], "training": {"optimizer": "als", "steps": 4},
                        "variant": {"base": "tt", "optimizer": "als", "sweep": {}, "tag": None}},
                       {"datasets": ["a"], "models": ["tt-rank2-als"], "seeds": [0], "training": {"steps": 8},
                        "variant": {"base": "tt", "optimizer": "als", "sweep": {"rank": 2}, "tag": None}}]}
    assert overview.counts(config) == {"networks": 1, "tt_models": 2, "network_variants": 0, "runs": 7,
                                       "datasets": 2, "min_seeds": 1, "max_seeds": 2}
    grid = overview.grid_table(config)
    assert r"\texttt{a} & $2$ & $3$ ($2$) \\" in grid and r"\texttt{b} & $2$ & -- \\" in grid
    runs = overview.runs_table(config)
    assert r"\texttt{tt-als} & tt & \texttt{als} & -- & -- &" in runs  # the optimizer's own settings: not repeated
    assert "rank = 2 & steps = 8" in runs


def test_the_main_text_fits_twelve_pages(rendered):
    pypdf = pytest.importorskip("pypdf")
    _, out, _ = rendered
    pages = [p.extract_text() for p in pypdf.PdfReader(compile_paper(out)).pages]
    first_appendix = next(i for i, t in enumerate(pages) if "The complete grid and its settings" in t
                          and "A The complete grid" in " ".join(t.split()))
    assert first_appendix <= 13  # the main text and the references before the appendix's first page
