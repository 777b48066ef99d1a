"""The house's one direction, checked: which part of ``service`` may import which, and no cycles.

fetch (``service.fhir``) -> screen (``service.screening``, pure) -> render (``service.render``,
builds only) -> ``service.workflow`` (the one orchestrator) -> ``service.api`` and
``service.cli``. Nothing imports upward. Every import counts, at any depth of the module and
under ``TYPE_CHECKING`` too, read with the standard library's ``ast`` (no import is executed).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("service", "fhir_maps")

ALLOWED: dict[str, frozenset[str]] = {
    "service": frozenset(),
    "errors": frozenset(),
    "urls": frozenset(),
    "logs": frozenset(),
    "metrics": frozenset(),
    "config": frozenset({"errors", "logs"}),
    "config_report": frozenset({"errors", "config", "logs"}),
    "demo": frozenset(),
    "screening": frozenset({"errors"}),
    "fhir": frozenset({"errors", "urls", "config", "screening", "logs", "metrics"}),
    "state": frozenset({"errors", "config"}),
    "auth": frozenset({"errors", "urls", "config", "state", "fhir", "logs", "metrics"}),
    "render": frozenset({"service", "errors", "screening", "fhir"}),
    "population": frozenset({"errors", "fhir", "screening", "logs"}),
    "clients": frozenset({"errors", "urls", "config", "auth", "fhir"}),
    "audit": frozenset({"service", "errors", "config", "fhir", "render"}),
    "workflow": frozenset({"errors", "config", "screening", "fhir", "render", "population",
                           "demo", "metrics"}),
    "api": frozenset({"service", "errors", "urls", "config", "screening", "fhir", "state", "auth",
                      "render", "clients", "workflow", "demo", "logs", "metrics", "audit"}),
    "main": frozenset({"service", "api", "config", "config_report", "screening", "logs",
                       "metrics"}),
    "openapi": frozenset({"main", "config"}),
    "cli": frozenset({"service", "errors", "config", "config_report", "screening", "render",
                      "population", "clients", "workflow", "logs", "fhir", "cli_help",
                      "terminal", "audit", "serving"}),
    "cli_help": frozenset(),
    "terminal": frozenset(),
    "serving": frozenset({"config"}),
    "__main__": frozenset({"cli"}),
    "fhir_maps": frozenset(),
}
"""Part -> the other parts it may import. A part is ``service.<first name>`` (``service`` itself
for the package's ``__init__``), or ``fhir_maps`` (data only)."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def part(module: str) -> str:
    names = module.split(".")
    if names[0] == "fhir_maps":
        return "fhir_maps"
    return names[1] if len(names) > 1 else "service"


def imports(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from a import b`` counts b when it is a module)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = {f"{base}.{alias.name}" for alias in node.names}
            found.update(names & known)
            if names - known:  # a name defined in ``base`` itself, not one of its modules
                found.add(base)
    return {name for name in found if name in known and name != module}


def graph() -> dict[str, set[str]]:
    files = list(source_files())
    known = {module_name(path) for path in files}
    return {module_name(path): imports(path, known) for path in files}


GRAPH = graph()


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_follow_the_layers(module: str) -> None:
    here = part(module)
    assert here in ALLOWED, f"{module}: a new part of the package; give it a place in ALLOWED"
    upward = sorted(target for target in GRAPH[module]
                    if part(target) != here and part(target) not in ALLOWED[here])
    assert not upward, f"{module} ({here}) may not import {upward}"


def test_the_screening_stage_imports_only_errors_and_itself() -> None:
    for module, targets in GRAPH.items():
        if part(module) == "screening":
            assert {part(t) for t in targets} <= {"screening", "errors"}, module


def _cycle() -> list[str] | None:
    """One import cycle among the modules, or None (depth-first search, colouring)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(GRAPH[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target):], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(GRAPH):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_import_cycles() -> None:
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checker_sees_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    """A guard on the guard: late and TYPE_CHECKING imports are edges too."""
    assert "service.render.writeback" in GRAPH["service.render.cds"]
    assert "service.fhir.client" in GRAPH["service.fhir.transaction"]  # under TYPE_CHECKING
    assert GRAPH["service.errors"] == set()
    assert "service.api.sources" in GRAPH["service.api.deps"]
