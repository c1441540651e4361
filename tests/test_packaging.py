"""The Pythons and dependency floors inatdl claims are the ones its CI tests.

pyproject.toml (requires-python, classifiers, dependency floors), noxfile.py (the sessions
CI runs), .ci/run and tests/constraints-minimums.txt each name them; a release that
raised one and not the others would claim what nothing tests.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _nox_pythons() -> list[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "PYTHONS" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise AssertionError("noxfile.py has no PYTHONS list")


def test_supported_pythons_agree_everywhere() -> None:
    project = _pyproject()["project"]
    pythons = _nox_pythons()
    assert project["requires-python"] == f">={pythons[0]}"
    classified = [
        c.rsplit(" :: ", 1)[1]
        for c in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert classified == pythons
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"supported=({' '.join(pythons)})" in ci
    ruff_target = _pyproject()["tool"]["ruff"]["target-version"]
    assert ruff_target == "py" + pythons[0].replace(".", "")


def test_minimum_constraints_pin_the_declared_floors() -> None:
    floors = {}
    for requirement in _pyproject()["project"]["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", requirement)
        assert match, f"dependency {requirement!r} has no plain >= floor"
        floors[match[1].lower()] = match[2]
    pins = {}
    for line in (ROOT / "tests" / "constraints-minimums.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    assert pins == floors
