"""Property tests: unrelated records never change the verdict; contraindications never lower it."""

from __future__ import annotations

import copy
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from service.fhir.bundle import parse_bundle
from service.screening.engine import screen
from service.screening.model import Verdict
from tests.builders import AS_OF, ICD, RXNORM, SNOMED, PatientBuilder
from tests.screening.cases import CASES

Adder = Callable[[PatientBuilder], object]

UNRELATED: list[Adder] = [
    lambda p: p.condition("J45.909", "Unspecified asthma, uncomplicated"),
    lambda p: p.condition("E11.9", "Type 2 diabetes mellitus without complications"),
    lambda p: p.condition("F41.1", "Generalized anxiety disorder"),
    lambda p: p.condition("I71.4", "Abdominal aortic aneurysm", verification="refuted"),
    lambda p: p.condition(text="Family history of aneurysm"),
    lambda p: p.condition("M54.5", "Low back pain", system=ICD, clinical="resolved"),
    lambda p: p.condition("38341003", "Hypertensive disorder", system=SNOMED),
    lambda p: p.medication("161", "acetaminophen"),
    lambda p: p.medication("36437", "sertraline"),
    lambda p: p.medication("3322", "diazepam", status="completed"),
    lambda p: p.medication(text="omeprazole 20 mg", system=RXNORM),
    lambda p: p.allergy("7980", "penicillin G"),
    lambda p: p.allergy("6130", "ketamine", clinical="resolved"),
    lambda p: p.bp(210, 130, days_ago=60),
]

CONTRAINDICATING: list[Adder] = [
    lambda p: p.condition("I71.4", "Abdominal aortic aneurysm"),
    lambda p: p.condition("Q28.2", "Arteriovenous malformation of cerebral vessels"),
    lambda p: p.condition("I61.9", "Intracerebral hemorrhage", clinical="resolved"),
    lambda p: p.allergy("6130", "ketamine"),
    lambda p: p.bp(200, 110, days_ago=0.1),
]


def verdict_of(p: PatientBuilder) -> Verdict:
    return screen(parse_bundle(p.bundle(), "property"), AS_OF).verdict


def extended(index: int, adders: list[Adder]) -> tuple[PatientBuilder, PatientBuilder]:
    base = CASES[index].patient
    more = copy.deepcopy(base)
    for add in adders:
        add(more)
    return base, more


case_index = st.integers(min_value=0, max_value=len(CASES) - 1)


@settings(max_examples=150, deadline=None)
@given(case_index, st.lists(st.sampled_from(UNRELATED), min_size=1, max_size=4))
def test_unrelated_records_never_change_the_verdict(index: int, adders: list[Adder]) -> None:
    base, more = extended(index, adders)
    assert verdict_of(more) == verdict_of(base)


@settings(max_examples=100, deadline=None)
@given(case_index, st.lists(st.sampled_from(CONTRAINDICATING), min_size=1, max_size=2))
def test_a_contraindicating_record_never_lowers_the_verdict(index: int,
                                                            adders: list[Adder]) -> None:
    base, more = extended(index, adders)
    before, after = verdict_of(base), verdict_of(more)
    assert after >= before
    assert after == Verdict.CONTRAINDICATED


