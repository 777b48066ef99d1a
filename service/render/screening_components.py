"""The components of the screening Observation: one per finding, the verdict per product, the
ruleset, the thresholds used, and eligibility. Every code is the screening CodeSystem's
(``fhir_maps/codesystems/screening.json``); no LOINC or SNOMED CT concept exists for these.

Component values follow https://hl7.org/fhir/R4/observation-definitions.html#Observation.component.value_x_:
a verdict or eligibility status is a ``valueCodeableConcept``, the ruleset a ``valueString``, a
threshold a ``valueQuantity`` in UCUM (``mm[Hg]``, or ``d`` for a window), an antidepressant trial
a ``valuePeriod`` (start, and start plus its days of exposure) with the ingredient, class, how the
duration was told and the records in ``code.text``. Eligibility never changes the verdict
(REFERENCE, Indication): it is recorded beside it, with the sentence that dose adequacy was not
assessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.observation import ObservationComponent
from fhir.resources.R4B.period import Period
from fhir.resources.R4B.quantity import Quantity

from service.fhir.codesystems import CS_SCREENING, canonical, display
from service.screening.model import Eligibility, ScreeningResult

__all__ = ["eligibility_evidence", "screening_components", "threshold_code"]

UCUM = "http://unitsofmeasure.org"


def _coding(code: str) -> Coding:
    return Coding(system=canonical(CS_SCREENING), code=code, display=display(CS_SCREENING, code))


def _concept(code: str, text: str | None = None) -> CodeableConcept:
    return CodeableConcept(coding=[_coding(code)], text=text)


def threshold_code(name: str) -> str:
    """``bp_systolic_elevated`` -> ``bp-systolic-elevated`` (the CodeSystem's code)."""
    return name.replace("_", "-")


def _threshold(name: str, value: float) -> ObservationComponent:
    days = name.endswith("_days")
    quantity = Quantity(value=value, unit="days" if days else "mmHg", system=UCUM,
                        code="d" if days else "mm[Hg]")
    return ObservationComponent(code=_concept(threshold_code(name), name),
                                valueQuantity=quantity)


def _eligibility(e: Eligibility) -> list[ObservationComponent]:
    parts = [ObservationComponent(code=_concept("eligibility"),
                                  valueCodeableConcept=CodeableConcept(
                                      coding=[_coding(e.status)],
                                      text=display(CS_SCREENING, e.status)))]
    for t in e.trials:
        text = (f"{t.ingredient} ({t.drug_class}), {t.days} days ({t.basis}): "
                f"{', '.join(t.evidence)}")
        parts.append(ObservationComponent(
            code=_concept("antidepressant-trial", text),
            valuePeriod=Period(start=t.start.isoformat(),
                               end=(t.start + timedelta(days=t.days)).isoformat())))
    parts.append(ObservationComponent(code=_concept("antidepressant-classes"),
                                      valueInteger=e.classes))
    parts += [ObservationComponent(code=_concept("eligibility-missing"), valueString=gap)
              for gap in e.missing]
    parts.append(ObservationComponent(code=_concept("eligibility-summary"),
                                      valueString=e.summary))
    return parts


def screening_components(result: ScreeningResult) -> list[ObservationComponent]:
    """Findings first (in the result's order), then verdicts, ruleset, thresholds, eligibility."""
    parts = [ObservationComponent(code=_concept(f.kind, f.rule), valueString=f.summary)
             for f in result.findings]
    parts += [ObservationComponent(
        code=_concept(f"{product}-verdict"),
        valueCodeableConcept=CodeableConcept(coding=[_coding(verdict.label)],
                                             text=verdict.label))
        for product, verdict in result.verdicts.items()]
    parts.append(ObservationComponent(code=_concept("ruleset"), valueString=result.ruleset))
    parts += [_threshold(name, value) for name, value in result.thresholds.items()]
    if result.eligibility is not None:
        parts += _eligibility(result.eligibility)
    return parts


def eligibility_evidence(result: ScreeningResult) -> Iterable[str]:
    """The records eligibility rests on: the diagnosis and each trial's (and non-trial's)."""
    e = result.eligibility
    if e is None:
        return ()
    return (*e.diagnosis, *(ref for t in e.trials for ref in t.evidence),
            *(ref for t, _ in e.other_exposures for ref in t.evidence), *e.suicidality)
