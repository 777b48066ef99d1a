"""The screening result as FHIR R4 resources: one Observation, DetectedIssues, and a Provenance.

Choices, with the spec sections behind them:

- **Observation** (https://hl7.org/fhir/R4/observation.html): code and verdict from our CodeSystem
  (no LOINC exists), category ``survey``; its components (service.render.screening_components)
  are one per finding, the verdict per product, the ruleset, the thresholds used and
  eligibility. ``derivedFrom`` may only point at DocumentReference, ImagingStudy, Media,
  QuestionnaireResponse, Observation or MolecularSequence, so only Observation evidence goes
  there; **all** evidence (Conditions, medications, allergies too, and eligibility's records) is
  listed as ``Provenance.entity`` with role ``source``
  (https://hl7.org/fhir/R4/provenance.html), and each DetectedIssue names its own evidence in
  ``implicated`` (Reference(Any)). The ruleset version is ``method.text`` and is part of the
  identifier.
- **DetectedIssue** (https://hl7.org/fhir/R4/detectedissue.html), in the style of the HL7 PDDI CDS
  IG: one per contraindication and per major or moderate interaction; ``code`` v3-ActCode ``DRG``
  for interactions, our ``contraindication`` code otherwise; summary and management text go in
  ``detail``. ``mitigation`` records an action "taken or committed to": the write-back happens
  when the clinician saves the screening to the chart, so the rule's recommended management is
  what they commit to. ``mitigation.action`` is that text alone (a CodeableConcept without a
  code: no ActDetectedIssueManagementCode says "followed the label advice"), ``date`` the write
  time and ``author`` the launching practitioner when there is one (the element allows
  Practitioner or PractitionerRole only, never the app). A rule without management text
  gets no mitigation.
- **Provenance**: targets every resource written; agents are the app and the launching clinician
  when there is one; activity v3-DataOperation CREATE. The app is named by a logical reference
  (identifier + display, no resource behind it): writing a Device would need a scope no clinic
  grants for it, and a scope-enforcing EHR refuses the whole transaction without it.
  R4 Provenance has no identifier, so its idempotency key is a ``meta.tag``.

Identifiers are deterministic (patient, ruleset, products asked, thresholds, evaluation time,
evidence versions), so writing the same result twice creates one set (service.fhir.transaction).
Building only: the write itself is service.workflow's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.detectedissue import (
    DetectedIssue,
    DetectedIssueEvidence,
    DetectedIssueMitigation,
)
from fhir.resources.R4B.meta import Meta
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.provenance import Provenance, ProvenanceAgent, ProvenanceEntity
from fhir.resources.R4B.reference import Reference

from service import __version__
from service.fhir.codesystems import CS_SCREENING, canonical, display, identifier_system
from service.fhir.references import Ref, reference_to, resource_path
from service.fhir.transaction import TxEntry, build_transaction
from service.render.screening_components import eligibility_evidence, screening_components
from service.screening.model import Finding, ScreeningResult

if TYPE_CHECKING:
    from fhir.resources.R4B.bundle import Bundle

__all__ = [
    "APP_NAME",
    "OBSERVATION_CATEGORY",
    "ScreeningWrite",
    "app_agent",
    "build_screening_write",
    "encounter_reference",
    "provenance_entry",
]

APP_NAME = "ketamine-screen"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DERIVED_FROM_TYPES = frozenset({"DocumentReference", "ImagingStudy", "Media",
                                "QuestionnaireResponse", "Observation", "MolecularSequence"})
def _literal(ref: str) -> bool:
    parsed = Ref.parse(ref)
    return parsed is not None and parsed.form == "relative" and parsed.version is None


def _evidence_refs(refs: Sequence[str]) -> list[str]:
    """Evidence that is a literal ``Type/id`` reference (Bundle-file pseudo refs are left out)."""
    return list(dict.fromkeys(ref for ref in refs if _literal(ref)))


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def encounter_reference(encounter: str | None) -> dict[str, str] | None:
    """``{"reference": "Encounter/<id>"}`` for the launch's encounter; None without one (then
    nothing is written for it)."""
    return {"reference": resource_path("Encounter", encounter)} if encounter else None


def app_agent() -> Reference:
    """The app itself, one identifier per released version: a logical reference, so no resource
    (and no scope to write one) is needed to name it as a Provenance agent or an author."""
    return Reference(identifier={"system": identifier_system("app"),
                                 "value": f"{APP_NAME}-{__version__}"},
                     display=f"{APP_NAME} {__version__}")


def provenance_entry(
    key: str,
    targets: Sequence[TxEntry],
    *,
    app: Reference,
    app_role: str,
    practitioner: str | None,
    practitioner_role: str,
    sources: Sequence[str] = (),
    recorded: datetime,
    activity: str = "CREATE",
) -> TxEntry:
    """A Provenance for ``targets``, tagged with ``key`` so that it too is created only once.

    ``activity`` is the v3-DataOperation code (``CREATE``, or ``UPDATE`` for a status change)."""
    system = identifier_system("provenance")

    def agent(who: Reference, role: str) -> ProvenanceAgent:
        return ProvenanceAgent(type=CodeableConcept(coding=[Coding(
            system=PARTICIPANT_TYPE, code=role, display=role.capitalize())]), who=who)

    agents = [agent(app, app_role)]
    if practitioner:
        agents.append(agent(Reference(reference=reference_to("Practitioner", practitioner)),
                            practitioner_role))
    provenance = Provenance(
        meta=Meta(tag=[Coding(system=system, code=key)]),
        target=[t.reference() for t in targets],
        recorded=recorded,
        activity=CodeableConcept(coding=[Coding(system=DATA_OPERATION, code=activity,
                                                display=activity.lower())]),
        agent=agents,
        entity=[ProvenanceEntity(role="source", what=Reference(reference=ref))
                for ref in _evidence_refs(sources)] or None,
    )
    return TxEntry(provenance, system, key, match="_tag")


class ScreeningWrite:
    """The entries of one screening write-back, and the transaction Bundle they make."""

    def __init__(self, observation: TxEntry, issues: list[TxEntry],
                 provenance: TxEntry) -> None:
        self.observation = observation
        self.issues = issues
        self.provenance = provenance

    @property
    def entries(self) -> list[TxEntry]:
        return [self.observation, *self.issues, self.provenance]

    def bundle(self) -> Bundle:
        return build_transaction(self.entries)


def _all_evidence(result: ScreeningResult) -> list[str]:
    """Every record the result rests on: the findings' and eligibility's."""
    return [*(ref for f in result.findings for ref in f.evidence), *eligibility_evidence(result)]


def _screening_key(result: ScreeningResult, versions: Mapping[str, str]) -> str:
    """Patient, ruleset, products asked, thresholds used, evaluation time and the versions of
    the records behind it: a result that differs in any of them is another record."""
    evidence = sorted(set(_all_evidence(result)))
    stamped = [f"{ref}@{versions.get(ref, '')}" for ref in evidence]
    limits = [f"{name}={value:g}" for name, value in sorted(result.thresholds.items())]
    return _hash(reference_to("Patient", result.patient), result.ruleset,
                 ",".join(result.products), *limits,
                 result.as_of.astimezone(UTC).isoformat(), *stamped)


def _issue_wanted(finding: Finding) -> bool:
    return finding.kind == "contraindication" or (
        finding.kind == "interaction" and finding.severity in ("major", "moderate"))


def _mitigation(finding: Finding, practitioner: str | None,
                now: datetime) -> list[DetectedIssueMitigation] | None:
    """The recommended management, committed to by saving the screening (see module docstring)."""
    if not finding.detail:
        return None
    author = Reference(reference=reference_to("Practitioner", practitioner)) \
        if practitioner else None
    return [DetectedIssueMitigation(action=CodeableConcept(text=finding.detail), date=now,
                                    author=author)]


def _issue(finding: Finding, key: str, patient: Reference, observation: TxEntry,
           as_of: datetime, *, practitioner: str | None,
           now: datetime) -> TxEntry:
    system = identifier_system("detected-issue")
    value = f"{key}.{_hash(finding.rule, *finding.evidence)[:16]}"
    if finding.kind == "interaction":
        code = Coding(system=ACT_CODE, code="DRG", display="Drug Interaction Alert")
    else:
        code = Coding(system=canonical(CS_SCREENING), code="contraindication",
                      display=display(CS_SCREENING, "contraindication"))
    severity = "high" if finding.kind == "contraindication" or finding.severity == "major" \
        else "moderate"
    detail = finding.summary if not finding.detail else f"{finding.summary}. {finding.detail}"
    issue = DetectedIssue(
        identifier=[{"system": system, "value": value}],
        status="final",
        code=CodeableConcept(coding=[code], text=finding.rule),
        severity=severity,
        patient=patient,
        identifiedDateTime=as_of,
        author=app_agent(),
        implicated=[Reference(reference=r) for r in _evidence_refs(finding.evidence)] or None,
        evidence=[DetectedIssueEvidence(detail=[observation.reference()])],
        detail=f"{detail} (source: {finding.source})" if finding.source else detail,
        mitigation=_mitigation(finding, practitioner, now),
    )
    return TxEntry(issue, system, value)


def build_screening_write(
    result: ScreeningResult,
    *,
    versions: Mapping[str, str] | None = None,
    practitioner: str | None = None,
    now: datetime | None = None,
    encounter: str | None = None,
) -> ScreeningWrite:
    """The resources that record ``result``; ``versions`` is RawPatientData.versions;
    ``encounter`` the launch's Encounter id (the result Observation's ``encounter``)."""
    now = now or datetime.now(UTC)
    key = _screening_key(result, versions or {})
    patient = Reference(reference=reference_to("Patient", result.patient))
    system = identifier_system("screening")
    verdict = result.verdict.label
    evidence = _evidence_refs(_all_evidence(result))
    observation = Observation(
        identifier=[{"system": system, "value": key}],
        status="final",
        category=[CodeableConcept(coding=[Coding(system=OBSERVATION_CATEGORY, code="survey",
                                                 display="Survey")])],
        code=CodeableConcept(coding=[Coding(system=canonical(CS_SCREENING), code="screening-result",
                                            display=display(CS_SCREENING, "screening-result"))]),
        subject=patient,
        encounter=encounter_reference(encounter),
        effectiveDateTime=result.as_of,
        issued=now,
        valueCodeableConcept=CodeableConcept(
            coding=[Coding(system=canonical(CS_SCREENING), code=verdict,
                           display=display(CS_SCREENING, verdict))], text=verdict),
        method=CodeableConcept(text=f"{APP_NAME} ruleset {result.ruleset}"),
        derivedFrom=[Reference(reference=ref) for ref in evidence
                     if ref.split("/")[0] in DERIVED_FROM_TYPES] or None,
        component=screening_components(result),
    )
    obs_entry = TxEntry(observation, system, key)
    issues: dict[str, TxEntry] = {}
    for finding in result.findings:
        if _issue_wanted(finding):
            entry = _issue(finding, key, patient, obs_entry, result.as_of,
                           practitioner=practitioner, now=now)
            issues.setdefault(entry.value, entry)
    targets = [obs_entry, *issues.values()]
    provenance = provenance_entry(f"{key}.provenance", targets, app=app_agent(),
                                  app_role="author", practitioner=practitioner,
                                  practitioner_role="enterer", sources=evidence, recorded=now)
    return ScreeningWrite(obs_entry, list(issues.values()), provenance)
