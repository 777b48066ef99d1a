"""Prints the app's OpenAPI document: ``python -m service.openapi > openapi/openapi.json``.

Sorted keys, two-space indent and a final newline, so the committed file diffs cleanly;
``tests/test_openapi.py`` fails when it falls behind the code (run ``make openapi``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from service.config import Settings
from service.main import create_app

__all__ = ["openapi_document", "openapi_text"]


def openapi_document() -> dict[str, Any]:
    """The schema of an app built with default settings (no ``.env``): the same on any machine."""
    return create_app(Settings(_env_file=None)).openapi()


def openapi_text() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(openapi_text())
