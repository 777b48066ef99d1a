"""Every service module declares ``__all__``, and every name it exports exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import service

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(service.__path__, "service.")
    if not info.ispkg and not info.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_module_exports_are_honest(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
