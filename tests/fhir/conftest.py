"""Fixtures for the FHIR tests; ``fhir_base_url`` is meant to move to tests/conftest.py."""

from __future__ import annotations

import pytest

from tests.fhir.sandbox_fixture import sandbox_url


@pytest.fixture(scope="session")
def fhir_base_url() -> str:
    """Base URL of a HAPI FHIR R4 sandbox: ``FHIR_SANDBOX_URL``, else one started for the run."""
    return sandbox_url()
