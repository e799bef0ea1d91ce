"""The cache of validated configs (``.snakemake/ttdm/``): an unchanged setup is not validated twice.

Parsing the Snakefile validates the config, which imports every registry (and so torch), and the per-job functions
of ``workflow/rules/common.smk`` then ask each run's method which sampler settings apply and which runs it needs
(torch again).  With a ``cache_dir``, :func:`ttdm.config.validate_config` stores a valid config's result together
with those derived values (:data:`DERIVED`: run settings, needs, other inputs, run specs, the complexity spec, the likelihood runs), and a later
validation of the same inputs returns them without importing any component.  A hit is exactly what validation would
return: an entry is used only when

- its file name, the sha256 of the config, the Python version, the fingerprints (size, mtime) of the schema and of
  the data files that datasets name, and the names of ttdm's source files (a component added or removed), matches;
- every ttdm source file loaded when it was computed still has the fingerprint it had (so editing code that the
  validation does not run, the report or the stages, keeps the cache);
- JSON gives its values back unchanged (else it is not stored).

A config with errors is never stored.  The derived values are served by :func:`derived` to the wrappers of
``ttdm.config`` only for a config equal to the stored one; any other config is computed as usual.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

KEEP = 16  # entries kept per cache directory (the most recently written)
_MISSING = object()
_LOADED: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (validated config, derived tables) of this process


def fingerprint(path: Path) -> list[Any]:
    """(path, size, mtime in ns) of a file, or (path, None, None) when it does not exist."""
    try:
        st = path.stat()
    except OSError:
        return [str(path), None, None]
    return [str(path), st.st_size, st.st_mtime_ns]


def cache_key(config: dict[str, Any], schema_path: str | Path) -> str:
    """sha256 of every input of a validation except the source files' contents (see the module docstring)."""
    package = Path(__file__).resolve().parents[1]
    datasets = config.get("datasets") if isinstance(config.get("datasets"), dict) else {}
    data_files = [e["path"] for e in datasets.values() if isinstance(e, dict) and isinstance(e.get("path"), str)]
    inputs = {
        "config": config,
        "python": sys.version,
        "schema": fingerprint(Path(schema_path)),
        "data": [fingerprint(Path(p)) for p in data_files],
        "package": [str(p.relative_to(package)) for p in sorted(package.rglob("*.py"))],
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=repr).encode()).hexdigest()


def entry_path(config: dict[str, Any], schema_path: str | Path, cache_dir: str | Path) -> Path | None:
    """Where the entry of ``config`` lives, or None for a config that JSON cannot hold (never cached)."""
    try:
        return Path(cache_dir) / f"config-{cache_key(config, schema_path)}.json"
    except (TypeError, ValueError):
        return None


def _loaded_sources() -> list[list[Any]]:
    """Fingerprints of every ttdm module loaded in this process (all the code a validation may have run)."""
    files = {getattr(m, "__file__", None) for name, m in list(sys.modules.items()) if name.split(".")[0] == "ttdm"}
    return [fingerprint(Path(f)) for f in sorted(f for f in files if f)]


def read(path: Path | None) -> dict[str, Any] | None:
    """The validated config stored at ``path`` (its derived values made available), or None on a miss."""
    if path is None or not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text())
        if any(fingerprint(Path(f[0])) != f for f in entry["sources"]):
            return None
        config, tables = entry["config"], entry["derived"]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # a damaged entry is a miss
    _LOADED.append((copy.deepcopy(config), tables))
    return config


def write(path: Path | None, config: dict[str, Any]) -> None:
    """Store the validated ``config`` and its derived values when JSON gives them back unchanged; keep the newest."""
    if path is None:
        return
    try:
        tables = {name: compute(config) for name, compute in DERIVED.items()}
    except Exception:  # noqa: BLE001 - a value the workflow would fail on anyway is not stored; validation stands
        return
    entry = {"config": config, "derived": tables}
    text = json.dumps({**entry, "sources": _loaded_sources()})
    if {k: v for k, v in json.loads(text).items() if k != "sources"} != entry:
        return
    _LOADED.append((copy.deepcopy(config), tables))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        for stale in sorted(path.parent.glob("config-*.json"), key=lambda p: p.stat().st_mtime_ns)[:-KEEP]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only directory: no cache


def derived(config: dict[str, Any], table: str, args: tuple[Any, ...], compute: Callable[..., Any]) -> Any:
    """``compute(config, *args)``, from the stored table when ``config`` equals a config read or written here."""
    try:
        key = json.dumps(args)
    except TypeError:  # arguments JSON cannot name (a numpy integer seed) are computed
        return compute(config, *args)
    for stored, tables in _LOADED:
        if stored == config:
            value = tables.get(table, {}).get(key, _MISSING)
            if value is not _MISSING:
                return copy.deepcopy(value)
    return compute(config, *args)


# --------------------------------------------------------------------------------------------------------------------
# The derived values: what the per-job functions of the workflow ask of a run's method


def _pairs(config: dict[str, Any]) -> list[tuple[str, str]]:
    from ttdm.config.grid import runs

    return list(dict.fromkeys((d, m) for d, m, _ in runs(config)))


def _settings_table(config: dict[str, Any]) -> dict[str, Any]:
    from ttdm.config.specs import run_settings

    return {json.dumps([d, m]): run_settings(config, d, m) for d, m in _pairs(config)}


def _needs_table(config: dict[str, Any]) -> dict[str, Any]:
    from ttdm.config.methods import needs_of

    return {json.dumps([d, m]): needs_of(config, d, m) for d, m in _pairs(config)}


def _inputs_table(config: dict[str, Any]) -> dict[str, Any]:
    from ttdm.config.grid import runs
    from ttdm.config.methods import inputs_of

    return {json.dumps([d, m, s]): inputs_of(config, d, m, s) for d, m, s in runs(config)}


def _run_spec_table(config: dict[str, Any]) -> dict[str, Any]:
    from ttdm.config.grid import runs
    from ttdm.config.specs import run_spec

    return {json.dumps([d, m, s]): run_spec(config, d, m, s) for d, m, s in runs(config)}


def _complexity_table(config: dict[str, Any]) -> dict[str, Any]:
    from ttdm.config.specs import complexity_spec

    return {json.dumps([]): complexity_spec(config)}


def _likelihood_table(config: dict[str, Any]) -> dict[str, Any]:
    from ttdm.config.specs import likelihood_runs

    return {json.dumps([]): [list(run) for run in likelihood_runs(config)]}  # JSON has no tuples


def _priors_table(config: dict[str, Any]) -> dict[str, Any]:
    from ttdm.config.specs import arch_priors

    return {json.dumps([]): arch_priors(config)}


DERIVED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "arch_priors": _priors_table,
    "likelihood_runs": _likelihood_table,
    "run_settings": _settings_table,
    "needs_of": _needs_table,
    "inputs_of": _inputs_table,
    "run_spec": _run_spec_table,
    "complexity_spec": _complexity_table,
}
