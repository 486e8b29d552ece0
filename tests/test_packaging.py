"""pyproject's metadata: classifiers PyPI knows, one per supported Python, CI on each."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from trove_classifiers import classifiers as known_classifiers

ROOT = Path(__file__).resolve().parents[1]
PYTHON_CLASSIFIER = re.compile(r"Programming Language :: Python :: 3\.(\d+)")


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _classified_minors() -> list[int]:
    return sorted(int(match.group(1)) for classifier in _project()["classifiers"]
                  if (match := PYTHON_CLASSIFIER.fullmatch(classifier)))


def test_every_classifier_is_one_pypi_knows() -> None:
    assert set(_project()["classifiers"]) - known_classifiers == set()


def test_the_python_classifiers_run_from_the_floor_to_3_13_without_a_gap() -> None:
    floor = re.fullmatch(r">=3\.(\d+)", _project()["requires-python"])
    assert floor is not None
    minors = _classified_minors()
    assert minors == list(range(int(floor.group(1)), max(minors) + 1))
    assert max(minors) >= 13
    assert "Typing :: Typed" in _project()["classifiers"]


def test_ci_tries_every_classified_python() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    listed = re.search(r"^PYTHONS=\(([^)]*)\)", script, re.MULTILINE)
    assert listed is not None
    tried = {int(version.split(".")[1]) for version in listed.group(1).split()}
    assert set(_classified_minors()) <= tried


def test_the_dev_extra_asks_for_a_pytest_asyncio_ready_for_python_3_14() -> None:
    (spec,) = [Requirement(line) for line in _project()["optional-dependencies"]["dev"]
               if Requirement(line).name == "pytest-asyncio"]
    assert not spec.specifier.contains("1.1.1")
    assert spec.specifier.contains("1.2.0")
    assert spec.specifier.contains(importlib.metadata.version("pytest-asyncio"))
