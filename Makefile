# Two commands do all the set-up on a fresh machine:
#   make paper   virtualenv + package + TeX Live, then the whole pipeline -> results/paper/paper.pdf
#   make test    the same set-up, then the whole test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
# The CPU wheel kept on disk on the development machines; pyproject.toml keeps a range that it satisfies.
# A GPU cluster uses envs/cuda.yaml instead (see README).
TORCH ?= torch==2.13.0
TEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended texlive-science \
                poppler-utils
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: all setup tex paper test test-fast lint report bench clean-results

all: paper

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test,slurm]"
	touch $@

tex:
	@if command -v latexmk >/dev/null && command -v pdftotext >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing TeX Live and poppler-utils from Debian (about 200 MB)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends $(TEX_PACKAGES) >/dev/null \
	  || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $(TEX_PACKAGES) >/dev/null; }; \
	else \
	  echo "LaTeX (latexmk) or pdftotext is missing. Install them with:"; \
	  echo "  sudo apt-get install --no-install-recommends $(TEX_PACKAGES)"; \
	  exit 1; \
	fi

setup: $(VENV)/.installed tex

paper: setup
	$(VENV)/bin/snakemake --cores $(CORES)
	@echo "paper: results/paper/paper.pdf"

test: setup
	$(VENV)/bin/pytest -q -ra

test-fast: $(VENV)/.installed
	$(VENV)/bin/pytest -q -ra -m "not slow"

lint: $(VENV)/.installed
	$(VENV)/bin/snakemake --lint

report: paper
	$(VENV)/bin/snakemake --cores $(CORES) --report results/report.html

bench: setup
	$(VENV)/bin/snakemake --cores $(CORES) --forcerun bench results/bench/train.csv
