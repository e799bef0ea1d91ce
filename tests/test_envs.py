"""The conda environment files list the same packages, with the same version ranges, as pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml


def requirement_map(requirements: list[str]) -> dict[str, str]:
    """{normalised name: version specifier} of pip requirement strings."""
    out = {}
    for req in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)", req.strip())
        assert match, req
        out[match.group(1).lower().replace("_", "-")] = match.group(3).replace(" ", "")
    return out


@pytest.mark.parametrize("env", ["cpu", "cuda"])
def test_env_matches_pyproject(root, env):
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    wanted = requirement_map(project["dependencies"])
    spec = yaml.safe_load((root / "envs" / f"{env}.yaml").read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
    listed = requirement_map([r for r in pip if not r.startswith("-")])
    assert listed == wanted
    assert "-e .." in pip  # the package itself, from this checkout
    python = next(d for d in spec["dependencies"] if isinstance(d, str) and d.startswith("python"))
    major_minor = python.split("=")[1]
    assert tuple(map(int, major_minor.split("."))) >= tuple(map(int, project["requires-python"][2:].split(".")))


def test_torch_pin_of_the_makefile_satisfies_pyproject(root):
    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    torch_range = requirement_map(project["dependencies"])["torch"]
    pin = re.search(r"^TORCH \?= torch==(\S+)", (root / "Makefile").read_text(), re.M).group(1)
    assert pin in SpecifierSet(torch_range)
