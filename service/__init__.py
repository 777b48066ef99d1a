"""Ketamine / esketamine suitability screening as a SMART-on-FHIR plug-in.

Pipeline, in one direction: fetch (``service.fhir``) -> normalise and evaluate
(``service.screening``, pure) -> render (``service.render``, builds only) -> ``service.workflow``
(the one orchestrator: read, screen, write) -> ``service.api`` and ``service.cli``.
``tests/test_layers.py`` holds the rules.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
