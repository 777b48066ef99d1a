"""CDS Hooks 2.0 documents: the discovery response and the cards for a screening result.

Spec: https://cds-hooks.hl7.org/2.0/ (Discovery; CDS Service Response, Card attributes).
One card per finding: ``critical`` for a contraindication, ``warning`` for a precaution or a major
or moderate interaction, ``info`` for missing data and the rest; a card's summary names the
product the order is for, and a blood-pressure card quotes the limits in force. When treatment
resistance is not documented (eligibility, REFERENCE, Indication), one more ``info`` card says so,
as information: it never changes an indicator. A card whose finding the write-back
records as a DetectedIssue suggests creating that same DetectedIssue (built by
:mod:`service.render.writeback`), so accepting the card documents the alert in the chart. Override
reasons are codes of ``fhir_maps/codesystems/cds-override-reason.json``. Whether a hook's draft
orders concern ketamine at all is the screening stage's call (service.screening.orders); the
prefetch templates are the fetch stage's (service.fhir.prefetch).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from service.fhir.codesystems import CS_CDS_OVERRIDE_REASON, CS_SCREENING, canonical, display
from service.fhir.prefetch import PREFETCH
from service.render.texts import ELIGIBILITY, KINDS, PRODUCT_NAMES, card_product, limits_line
from service.render.writeback import APP_NAME, build_screening_write
from service.screening.model import Finding, ScreeningResult
from service.screening.schema import Ruleset

__all__ = [
    "OVERRIDE_REASONS",
    "SERVICES",
    "CdsService",
    "cards_for",
    "discovery",
    "eligibility_card",
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


_KIND = {k.kind: k for k in KINDS}


def _short(text: str) -> str:
    if len(text) <= SUMMARY_MAX:
        return text
    cut = text[: SUMMARY_MAX - 1].rsplit(" ", 1)[0].rstrip(" ,;:")
    return cut + "…"


def _summary(finding: Finding, products: Sequence[str]) -> str:
    return _short(f"{_KIND[finding.kind].card_prefix(products)}: {finding.summary}")


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def _md(text: str) -> str:
    """Text from the chart, escaped so that it shows as written (no links, no HTML)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _screened_for(products: Sequence[str]) -> str:
    named = " and ".join(PRODUCT_NAMES[p] for p in products)
    return f"Screened for {named}, the product(s) of the order."


def _detail(finding: Finding, result: ScreeningResult, sources: Mapping[str, str],
            limits: str) -> str:
    ruleset = result.ruleset
    lines = [f"**{_md(finding.summary)}**", ""]
    if finding.detail:
        lines += [_md(finding.detail), ""]
    if limits:
        lines += [limits, ""]  # our own words and numbers: nothing to escape
    lines += [_screened_for(result.products), ""]
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

    In the write-back transaction the issue points at the screening Observation through a
    ``urn:uuid`` reference; outside that transaction it would dangle, so the evidence is dropped
    and the author is named by display only.
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


def _link(base_url: str, context: str) -> list[dict[str, str]]:
    return [{"label": "Open the ketamine screening app", "type": "smart",
             "url": f"{base_url.rstrip('/')}/launch", "appContext": context}]


def eligibility_card(result: ScreeningResult, *, hook_instance: str,
                     base_url: str) -> dict[str, Any] | None:
    """An information card when treatment resistance is not documented (REFERENCE, Indication):
    it never says "not eligible", never raises an indicator, and carries no suggestion."""
    e = result.eligibility
    if e is None or e.status != "not-documented":
        return None
    lines = [f"**{_md(ELIGIBILITY[e.status].title)}**", "", _md(e.summary), ""]
    if e.missing:
        lines.append("What the record lacks:")
        lines += [f"- {_md(gap)}" for gap in e.missing]
        lines.append("")
    if e.trials:
        lines.append("Trials found:")
        lines += [f"- {_md(t.ingredient)} ({_md(t.drug_class)}) from {t.start.isoformat()}, "
                  f"{t.days} days ({_md(t.basis)}): {_md(', '.join(t.evidence))}"
                  for t in e.trials]
        lines.append("")
    lines.append(f"Source: {_md(e.source)}. Information only: eligibility never changes the "
                 "safety verdict.")
    code = "eligibility"
    return {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL,
                               f"urn:ketamine-screen:card:{hook_instance}|{code}")),
        "summary": _short(f"{card_product(result.products).capitalize()}: "
                          "treatment resistance not documented in the record (information)"),
        "indicator": "info",
        "detail": "\n".join(lines),
        "source": {"label": f"{APP_NAME} ruleset {result.ruleset}: {e.source}",
                   "topic": {"system": canonical(CS_SCREENING), "code": code,
                             "display": display(CS_SCREENING, code)}},
        "links": _link(base_url, code),
    }


def cards_for(result: ScreeningResult, *, hook_instance: str, base_url: str,
              ruleset: Ruleset) -> list[dict[str, Any]]:
    """The cards for ``result``, most urgent first; the eligibility card, when there is one,
    last."""
    issues = _issue_resources(result)
    order = {"critical": 0, "warning": 1, "info": 2}
    bp = ruleset.blood_pressure
    bp_rules = {bp.uncontrolled.id, bp.elevated.id, bp.missing.id, bp.unusable.id}
    limits = limits_line(result.thresholds)
    cards: list[dict[str, Any]] = []
    for finding in result.findings:
        indicator = _indicator(finding)
        key = f"{hook_instance}|{finding.rule}|{'|'.join(finding.evidence)}"
        card: dict[str, Any] = {
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:ketamine-screen:card:{key}")),
            "summary": _summary(finding, result.products),
            "indicator": indicator,
            "detail": _detail(finding, result, ruleset.sources,
                              limits if finding.rule in bp_rules else ""),
            "source": {
                "label": f"{APP_NAME} ruleset {result.ruleset}: {finding.source}",
                "topic": {"system": canonical(CS_SCREENING), "code": finding.kind,
                          "display": display(CS_SCREENING, finding.kind)},
            },
            "links": _link(base_url, finding.rule),
        }
        implicated = tuple(sorted(r for r in finding.evidence if "/" in r))
        issue = issues.get((finding.rule, implicated))
        if issue is not None:
            card["suggestions"] = [{
                "label": "Record this issue in the chart",
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:ketamine-screen:sugg:{key}")),
                "actions": [{"type": "create", "resource": issue,
                             "description": "Create a DetectedIssue: "
                                            f"{_summary(finding, result.products)}"}],
            }]
            card["selectionBehavior"] = "at-most-one"
        if indicator != "info":
            card["overrideReasons"] = [{"system": canonical(CS_CDS_OVERRIDE_REASON), "code": code,
                                        "display": text} for code, text in OVERRIDE_REASONS]
        cards.append(card)
    cards.sort(key=lambda c: order[c["indicator"]])
    eligibility = eligibility_card(result, hook_instance=hook_instance, base_url=base_url)
    return [*cards, eligibility] if eligibility else cards
