"""The docs site: every complete example runs against the sandbox, every public name has
its API reference. (``mkdocs build --strict`` itself runs in CI.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import vendorkit

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: A fenced Python block; one that ends ``asyncio.run(main())`` is a complete program.
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
#: A mkdocstrings directive and the indented options under it.
DIRECTIVE = re.compile(r"^::: ([\w.]+)\n((?:[ \t]+.*\n)*)", re.MULTILINE)


def _programs() -> list[tuple[str, str]]:
    programs = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        for block in BLOCK.finditer(text):
            if block.group(1).rstrip().endswith("asyncio.run(main())"):
                line = text.count("\n", 0, block.start()) + 1
                programs.append((f"{page.relative_to(DOCS)}:{line}", block.group(1)))
    return programs


PROGRAMS = _programs()


def test_the_docs_hold_a_complete_example_for_every_vendor() -> None:
    pages = {where.split(":")[0] for where, _ in PROGRAMS}
    assert {f"vendors/{vendor}.md" for vendor in
            ("cloud4wi", "wokelo", "cloudcx", "cambyopro", "wogeez")} <= pages


@pytest.mark.parametrize("code", [code for _, code in PROGRAMS],
                         ids=[where for where, _ in PROGRAMS])
def test_a_complete_example_runs_against_the_sandbox(code: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], cwd=tmp_path, capture_output=True,
        text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "the example printed nothing"


def _documented() -> set[str]:
    """Every object path the API reference renders: ``::: path`` with its members."""
    documented = set()
    for page in (DOCS / "reference").glob("*.md"):
        for directive in DIRECTIVE.finditer(page.read_text()):
            path, options = directive.groups()
            documented.add(path)
            members = re.search(r"^\s+members: (.*)$", options, re.MULTILINE)
            if members is None:
                documented.add(f"{path}.*")
            elif members.group(1).startswith("["):
                documented |= {f"{path}.{name.strip()}"
                               for name in members.group(1).strip("[]").split(",")}
    return documented


def test_every_public_name_has_its_api_reference() -> None:
    documented = _documented()
    missing = []
    for name in vendorkit.__all__:
        module = getattr(vendorkit, name).__module__
        if not {f"{module}.{name}", f"{module}.*"} & documented:
            missing.append(f"{module}.{name}")
    assert missing == []
