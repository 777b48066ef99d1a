"""CDS Hooks 2.0 documents: the discovery response and the cards for a screening result.

Spec: https://cds-hooks.hl7.org/2.0/ (Discovery; CDS Service Response, Card attributes).
One card per finding: ``critical`` for a contraindication, ``warning`` for a precaution or a major
or moderate interaction, ``info`` for missing data and the rest. A card whose finding the write-back
records as a DetectedIssue suggests creating that same DetectedIssue (built by
:mod:`service.render.writeback`), so accepting the card documents the alert in the chart. Override
reasons are codes of ``fhir_maps/codesystems/cds-override-reason.json``. Whether a hook's draft
orders concern ketamine at all is the screening stage's call (service.screening.orders); the
prefetch templates are the fetch stage's (service.fhir.prefetch).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from service.fhir.codesystems import CS_CDS_OVERRIDE_REASON, CS_SCREENING, display
from service.fhir.prefetch import PREFETCH
from service.render.texts import KINDS
from service.render.writeback import APP_NAME, build_screening_write
from service.screening.model import Finding, ScreeningResult

__all__ = [
    "OVERRIDE_REASONS",
    "SERVICES",
    "CdsService",
    "cards_for",
    "discovery",
]

SUMMARY_MAX = 139
"""The spec asks for a summary of fewer than 140 characters."""
OVERRIDE_REASONS: tuple[tuple[str, str], ...] = (
    ("benefit-outweighs-risk", "Benefit outweighs risk"),
    ("already-monitored", "Patient already monitored for this"),
    ("not-applicable", "Not applicable to this patient"),
    ("data-incorrect", "The record is incorrect or out of date"),
)
"""Codes and displays of ``CS_CDS_OVERRIDE_REASON`` offered on every warning and critical card."""

Indicator = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class CdsService:
    id: str
    hook: str
    title: str
    description: str


SERVICES: dict[str, CdsService] = {s.id: s for s in (
    CdsService("ketamine-order-select", "order-select", "Ketamine / esketamine screen",
               "When ketamine or esketamine (Spravato, Ketalar) is selected for ordering, checks "
               "the patient's contraindications, precautions, interactions and missing data."),
    CdsService("ketamine-order-sign", "order-sign", "Ketamine / esketamine screen at signing",
               "When an order for ketamine or esketamine is signed, checks the patient's "
               "contraindications, precautions, interactions and missing data."),
)}


def discovery() -> dict[str, Any]:
    return {"services": [
        {"hook": s.hook, "title": s.title, "description": s.description, "id": s.id,
         "prefetch": dict(PREFETCH)} for s in SERVICES.values()]}


def _indicator(finding: Finding) -> Indicator:
    if finding.kind == "contraindication":
        return "critical"
    if finding.kind == "precaution" or (
            finding.kind == "interaction" and finding.severity in ("major", "moderate")):
        return "warning"
    return "info"


_PREFIX = {k.kind: k.card_prefix for k in KINDS}


def _summary(finding: Finding) -> str:
    text = f"{_PREFIX[finding.kind]}: {finding.summary}"
    if len(text) <= SUMMARY_MAX:
        return text
    cut = text[: SUMMARY_MAX - 1].rsplit(" ", 1)[0].rstrip(" ,;:")
    return cut + "…"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def _md(text: str) -> str:
    """Text from the chart, escaped so that it shows as written (no links, no HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _detail(finding: Finding, ruleset: str, sources: Mapping[str, str]) -> str:
    lines = [f"**{_md(finding.summary)}**", ""]
    if finding.detail:
        lines += [_md(finding.detail), ""]
    records = finding.records or tuple((ref, "", None) for ref in finding.evidence)
    if records:
        lines.append("Records:")
        for ref, label, when in records:
            line = f"- {_md(ref)}"
            if label:
                line += f": {_md(label)}"
            if when is not None:
                line += f" (recorded {when.date().isoformat()})"
            lines.append(line)
        lines.append("")
    cited = [f"{name}: {_md(full)}" for name, full in sources.items() if name in finding.source]
    lines.append(f"Source: {_md(finding.source)}" + (f" ({'; '.join(cited)})" if cited else ""))
    lines.append(f"Rule `{finding.rule}`, ruleset {ruleset}. The screen supports the "
                 "prescriber's decision; it does not make it.")
    return "\n".join(lines)


def _issue_resources(result: ScreeningResult) -> dict[tuple[str, tuple[str, ...]], dict[str, Any]]:
    """The DetectedIssue the write-back would create for each finding, ready for a CDS action.

    In the write-back transaction the issue points at the screening Observation and the app's
    Device through ``urn:uuid`` references; outside that transaction they would dangle, so the
    evidence is dropped and the author is named by display only.
    """
    found: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
    for entry in build_screening_write(result).issues:
        resource = entry.resource.model_dump(mode="json", exclude_none=True)
        resource.pop("evidence", None)
        resource["author"] = {"display": APP_NAME}
        implicated = tuple(sorted(r["reference"] for r in resource.get("implicated", [])))
        rule = str(resource.get("code", {}).get("text", ""))
        found[(rule, implicated)] = resource
    return found


def cards_for(result: ScreeningResult, *, hook_instance: str, base_url: str,
              sources: Mapping[str, str]) -> list[dict[str, Any]]:
    """The cards for ``result``, most urgent first."""
    issues = _issue_resources(result)
    order = {"critical": 0, "warning": 1, "info": 2}
    cards: list[dict[str, Any]] = []
    for finding in result.findings:
        indicator = _indicator(finding)
        key = f"{hook_instance}|{finding.rule}|{'|'.join(finding.evidence)}"
        card: dict[str, Any] = {
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:ketamine-screen:card:{key}")),
            "summary": _summary(finding),
            "indicator": indicator,
            "detail": _detail(finding, result.ruleset, sources),
            "source": {
                "label": f"{APP_NAME} ruleset {result.ruleset}: {finding.source}",
                "topic": {"system": CS_SCREENING, "code": finding.kind,
                          "display": display(CS_SCREENING, finding.kind)},
            },
            "links": [{"label": "Open the ketamine screening app", "type": "smart",
                       "url": f"{base_url.rstrip('/')}/launch", "appContext": finding.rule}],
        }
        implicated = tuple(sorted(r for r in finding.evidence if "/" in r))
        issue = issues.get((finding.rule, implicated))
        if issue is not None:
            card["suggestions"] = [{
                "label": "Record this issue in the chart",
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:ketamine-screen:sugg:{key}")),
                "actions": [{"type": "create", "resource": issue,
                             "description": f"Create a DetectedIssue: {_summary(finding)}"}],
            }]
            card["selectionBehavior"] = "at-most-one"
        if indicator != "info":
            card["overrideReasons"] = [{"system": CS_CDS_OVERRIDE_REASON, "code": code,
                                        "display": text} for code, text in OVERRIDE_REASONS]
        cards.append(card)
    cards.sort(key=lambda c: order[c["indicator"]])
    return cards
