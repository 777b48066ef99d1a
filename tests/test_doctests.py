"""The examples in the docstrings are tests too: reference forms, URL checks, the quirks."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ("service.fhir.references", "service.fhir.quirks", "service.urls",
           "service.render.fhir_time")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    results = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0, f"{name} has no examples"
    assert results.failed == 0
