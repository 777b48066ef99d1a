"""The FHIR id grammar in one place (service.fhir.references): what may go into a URL."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from service.fhir.references import FHIR_ID_PATTERN, Ref, is_fhir_id, resource_path
from service.render.integration import IntegrationInput
from service.render.phq9 import Phq9Input
from service.render.rems_form import SubmissionInput
from service.render.session_input import SessionInput


def test_the_grammar_in_one_place() -> None:
    assert [is_fhir_id(v) for v in ("a", "A-1.b", "...", "a" * 64)] == [True] * 4
    assert [is_fhir_id(v) for v in (".", "..", "a/b", "a b", "a\n", "é", None)] == [False] * 7
    assert resource_path("Medication", "m-1") == "Medication/m-1"
    assert Ref.parse("Medication/.") is None and Ref.parse("Medication/..") is None
    assert Ref.parse("https://ehr.example/fhir/Medication/..") is None


@pytest.mark.parametrize(("model", "field"), [
    (SessionInput, "patient_id"), (SessionInput, "practitioner_id"),
    (IntegrationInput, "patient_id"), (Phq9Input, "patient_id"),
    (SubmissionInput, "practitioner_id")])
def test_the_models_use_the_same_grammar(model: type[BaseModel], field: str) -> None:
    metadata = model.model_fields[field].metadata
    assert any(getattr(m, "pattern", None) == FHIR_ID_PATTERN for m in metadata)
