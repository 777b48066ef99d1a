"""The Jinja2 environment of the clinician's pages and the demo launcher (``service/templates``)."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

__all__ = ["PACKAGE_DIR", "templates"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""``service/``: templates and static files ship inside the package."""

templates = Jinja2Templates(directory=PACKAGE_DIR / "templates")
templates.env.trim_blocks = templates.env.lstrip_blocks = True
templates.env.globals["bp_legend"] = (
    ("swatch-systolic", "Systolic: solid line, circles"),
    ("swatch-diastolic", "Diastolic: dotted line, squares"),
    ("swatch-uncontrolled", "Dashed red: uncontrolled limit (CH-KETAMINE)"),
    ("swatch-elevated", "Dashed brown: elevated limit (SPRAVATO-PI 5.6)"),
)
