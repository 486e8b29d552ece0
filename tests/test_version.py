"""The version is written once, in ``vendorkit/_version.py``; everything that names it agrees."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.version import Version

import vendorkit
from tests.conftest import MakeManager
from tests.toy import Toy
from vendorkit import _constants

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_reads_its_version_from_the_version_module() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "vendorkit._version.__version__"
    }


def test_the_installed_metadata_names_the_source_version() -> None:
    installed = importlib.metadata.version("vendorkit")
    assert installed == vendorkit.__version__, "a stale install: run pip install -e ."


def test_the_version_is_a_normalised_pep_440_version() -> None:
    assert str(Version(vendorkit.__version__)) == vendorkit.__version__


def test_the_user_agent_names_the_version() -> None:
    assert f"vendorkit/{vendorkit.__version__}" == _constants.USER_AGENT


async def test_every_call_sends_the_user_agent_with_the_version(
    toy: Toy, make_manager: MakeManager
) -> None:
    sent = (await make_manager("json").request("GET", "/data")).json()["headers"]
    assert sent["User-Agent"] == f"vendorkit/{vendorkit.__version__}"


def test_the_changelog_has_a_section_for_the_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    version = Version(vendorkit.__version__)
    assert re.search(r"^## \[Unreleased\]$", changelog, re.MULTILINE)
    if not (version.is_prerelease or version.is_devrelease):
        released = rf"^## \[{re.escape(vendorkit.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$"
        assert re.search(released, changelog, re.MULTILINE), f"no section for {version}"
