"""Provenance of a rendered paper: git commit, package versions, devices of the runs, config hash and date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from ttdm.io import load_json, spec_hash

PACKAGES = ("torch", "numpy", "scipy", "pandas", "matplotlib", "snakemake", "teneva", "pot", "diffusers")
PathLike = str | os.PathLike


def git_state(repo: PathLike) -> dict[str, Any] | None:
    """{"commit": full hash, "dirty": tracked files modified} of the git work tree holding ``repo``; None outside
    a repository or without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "dirty": dirty}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (importlib.metadata; distributions not installed are left out) and Python."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def describe_device(info: dict[str, Any]) -> str:
    """A one-line description of a train.json ``device`` record, e.g. "cuda: NVIDIA H100 (CUDA 12.4)" or
    "cpu: x86_64, 16 cores, 4 torch threads"."""
    if info.get("device") == "cuda" and info.get("gpu"):
        return f"cuda: {info['gpu']}" + (f" (CUDA {info['cuda']})" if info.get("cuda") else "")
    parts = [str(info[k]) for k in ("processor",) if info.get(k)]
    parts += [f"{info['cpu_count']} cores"] if info.get("cpu_count") else []
    threads = info.get("torch_threads")
    parts += [f"{threads} torch thread{'s' if threads != 1 else ''}"] if threads else []
    device = str(info.get("device", "unknown"))
    return f"{device}: {', '.join(parts)}" if parts else device


def run_devices(train_files: Iterable[PathLike]) -> dict[str, int]:
    """How many training runs (their train.json files) used each device description."""
    counts: dict[str, int] = {}
    for f in sorted(map(Path, train_files)):
        device = load_json(f).get("device")
        if device:
            name = describe_device(device)
            counts[name] = counts.get(name, 0) + 1
    return counts


def render_date() -> str:
    """Today's date (UTC, ISO 8601), or that of $SOURCE_DATE_EPOCH when set, for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc) if epoch else dt.datetime.now(dt.timezone.utc)
    return now.date().isoformat()


def collect_provenance(train_files: Iterable[PathLike], config: dict[str, Any], *,
                       repo: PathLike | None = None) -> dict:
    """Everything the appendix reports: {"git": git_state or None, "packages", "devices" (of the runs whose
    train.json files are given), "config_hash", "date"}.

    ``repo``: where to ask git (default: the current directory, where Snakemake runs).
    """
    return {
        "git": git_state(repo if repo is not None else Path.cwd()),
        "packages": package_versions(),
        "devices": run_devices(train_files),
        "config_hash": spec_hash(config),
        "date": render_date(),
    }
