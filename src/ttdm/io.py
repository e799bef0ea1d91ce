"""Small file helpers shared by every stage: atomic writes, JSON, spec hashing, device choice."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write a file atomically: ``write(tmp)`` fills a temporary file beside ``path``, which is then renamed.

    A reader (or a rerun after the job was killed) sees either the old file or the complete new one, never half.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


def _default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def save_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_default) + "\n"
    return atomic_write(path, lambda p: p.write_text(text))


def load_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; the error names the file when it is missing or malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` atomically (the temporary file is written through a handle, so no '.npy' is appended)."""

    def write(p: Path) -> None:
        with open(p, "wb") as fh:
            np.save(fh, array)

    return atomic_write(path, write)


def save_csv_rows(path: str | os.PathLike, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` (dicts) as a CSV with ``columns``, atomically."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write(path, lambda p: p.write_text(buffer.getvalue()))


def dataset_metas(meta_files: Iterable[str | os.PathLike], datasets: Iterable[str]) -> dict[str, dict[str, Any]]:
    """meta.json of each of ``datasets``, from the given files (results/data/{dataset}/meta.json); a dataset whose
    file was not given is an error naming it."""
    files = {Path(f).parent.name: Path(f) for f in meta_files}
    datasets = list(datasets)
    missing = sorted(set(datasets) - set(files))
    if missing:
        raise ValueError(f"no meta.json given for the datasets {', '.join(missing)} (--meta)")
    return {ds: load_json(files[ds]) for ds in dict.fromkeys(datasets)}


def spec_hash(spec: Any, length: int = 12) -> str:
    """A short, stable hash of a JSON-serialisable spec (key order does not matter)."""
    text = json.dumps(spec, sort_keys=True, default=_default)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def resolve_device(requested: str = "auto") -> str:
    """'auto' → 'cuda' when available else 'cpu'; 'cuda' without a GPU is an error, not a silent fallback."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but torch sees no CUDA device; use device: auto or cpu")
    if requested not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {requested!r}; allowed: auto, cpu, cuda")
    return requested


def _cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo (Linux), else None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def device_info(device: str) -> dict[str, Any]:
    """What a result was computed on: recorded beside every run and benchmark."""
    import platform

    import torch

    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _cpu_model() or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info
