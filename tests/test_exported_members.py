"""The public names: one list (``vendorkit._MODULES``), and everything agrees with it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import vendorkit


def _type_checking_imports() -> set[str]:
    tree = ast.parse(Path(vendorkit.__file__).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and ast.unparse(node.test) == "TYPE_CHECKING")
    return {alias.asname or alias.name for node in block.body
            if isinstance(node, ast.ImportFrom) for alias in node.names}


def test_all_lists_exactly_the_names_of_the_module_table() -> None:
    table = {name for names in vendorkit._MODULES.values() for name in names}
    assert set(vendorkit.__all__) == table
    assert len(vendorkit.__all__) == len(table)  # no name listed under two modules


def test_type_checkers_see_the_same_names_as_the_runtime() -> None:
    assert _type_checking_imports() == set(vendorkit.__all__)


def test_every_exported_name_resolves_to_the_object_of_its_module() -> None:
    for module, names in vendorkit._MODULES.items():
        source = importlib.import_module(module, "vendorkit")
        for name in names:
            assert getattr(vendorkit, name) is getattr(source, name), name
            assert getattr(source, "__all__", [name]).count(name) == 1, (module, name)


def test_dir_lists_the_public_names() -> None:
    assert dir(vendorkit) == sorted(vendorkit.__all__)
