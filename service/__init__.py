"""Ketamine / esketamine suitability screening as a SMART-on-FHIR plug-in.

Pipeline: fetch (``service.fhir``) -> normalise and evaluate (``service.screening``)
-> render (``service.render``). The HTTP surface lives in ``service.api``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
