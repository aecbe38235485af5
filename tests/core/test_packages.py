"""The packages that stand for one module (``from cnn_core.compare import curves``) offer every public name of it,
so a function added to the module is importable the way the pages and the CLI import it."""

import ast
import importlib
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "cnn_core"
FACES = {  # package -> the module whose names it offers
    "config": "run",
    "model": "network",
    "data": "load",
    "training": "loop",
    "compare": "comparison",
    "explain": "attributions",
    "cli": "commands",
}


def public_names(path: Path) -> set[str]:
    """The names a module defines at its top level (functions, classes, constants), not those it imports."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("package", FACES)
def test_a_package_offers_every_public_name_of_its_module(package):
    module = importlib.import_module(f"cnn_core.{package}")
    wanted = public_names(CORE / package / f"{FACES[package]}.py")
    assert wanted <= set(module.__all__), sorted(wanted - set(module.__all__))
    for name in wanted:
        assert getattr(module, name) is getattr(importlib.import_module(f"cnn_core.{package}.{FACES[package]}"), name)
