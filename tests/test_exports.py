"""Every service module declares ``__all__``, every name it exports exists, and every name used
from another module (``from service.x import name``, or ``x.name`` on an imported module) is in
that module's ``__all__``: a module's public surface is what it says it is."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import service

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    info.name for info in pkgutil.walk_packages(service.__path__, "service.")
    if not info.ispkg and not info.name.endswith("__main__")
)
USERS = sorted(p for folder in ("service", "tests") for p in (ROOT / folder).rglob("*.py")
               if "target" not in p.parts)
"""The benchmarks are left out: they swap a module's internals for an alternative on purpose."""


@pytest.mark.parametrize("name", MODULES)
def test_module_exports_are_honest(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"


def _module(name: str) -> ModuleType | None:
    if name != "service" and not name.startswith("service."):
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _public(module: ModuleType) -> set[str]:
    return set(getattr(module, "__all__", ()))


def _uses(path: Path) -> Iterator[tuple[str, str, int]]:
    """(module, name, line) for each name ``path`` takes from a service module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            source = _module(node.module)
            if source is None:
                continue
            for alias in node.names:
                inner = _module(f"{node.module}.{alias.name}")
                if inner is not None and inner.__name__ == f"{node.module}.{alias.name}":
                    bound[alias.asname or alias.name] = inner.__name__
                else:
                    yield node.module, alias.name, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and _module(alias.name) is not None:
                    bound[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in bound):
            target = importlib.import_module(bound[node.value.id])
            if not hasattr(target, "__path__"):  # a package's attributes are its modules
                yield bound[node.value.id], node.attr, node.lineno


@pytest.mark.parametrize("path", USERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_names_used_across_modules_are_exported(path: Path) -> None:
    here = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    hidden = [f"{module}.{name} (line {line})" for module, name, line in _uses(path)
              if module != here and name not in _public(importlib.import_module(module))
              and not name.startswith("__")]
    assert not hidden, f"{path.name} uses names its modules do not export: {hidden}"
