"""Synthetic demo patients shipped with the package (no real person's data)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["demo_patients"]


def demo_patients() -> list[Path]:
    folder = resources.files("service.demo")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".json"))
