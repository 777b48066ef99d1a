"""The screening result as text for people: the verdict per product, then eligibility, then the
findings grouped by kind (each naming the products it concerns)."""

from __future__ import annotations

from service.render.texts import KINDS, PRODUCT_NAMES, VERDICTS
from service.screening.model import Eligibility, Finding, ScreeningResult

__all__ = ["text_report"]

_ELIGIBILITY = {
    "trd-documented": "TRD DOCUMENTED",
    "mdsi-pathway": "MDSI PATHWAY",
    "not-documented": "NOT DOCUMENTED in the record",
}


def _finding_lines(finding: Finding, all_products: bool) -> list[str]:
    scope = "" if all_products else f" (for {', '.join(finding.products)} only)"
    lines = [f"  - {finding.summary}{scope}  [{finding.rule}, {finding.severity}]"]
    for ref, label, when in finding.records:
        stamp = when.date().isoformat() if when else "date not recorded"
        lines.append(f"      record: {ref} ({label}; recorded {stamp})")
    if finding.detail:
        lines.append(f"      action: {finding.detail}")
    lines.append(f"      source: {finding.source}")
    return lines


def _eligibility_lines(e: Eligibility) -> list[str]:
    lines = ["", f"Eligibility (treatment-resistant depression): {_ELIGIBILITY[e.status]}",
             f"  {e.summary}"]
    if e.diagnosis:
        lines.append(f"  diagnosis: {', '.join(e.diagnosis)}")
    for t in e.trials:
        lines.append(f"  trial: {t.ingredient} ({t.drug_class}) from {t.start.isoformat()}, "
                     f"{t.days} days ({t.basis}): {', '.join(t.evidence)}")
    for t, why in e.other_exposures:
        lines.append(f"  not counted: {t.ingredient} ({t.drug_class}), {why}: "
                     f"{', '.join(t.evidence)}")
    for gap in e.missing:
        lines.append(f"  missing: {gap}")
    lines.append(f"  source: {e.source}")
    return lines


def text_report(result: ScreeningResult) -> str:
    contract = result.as_contract()
    lines = [f"Ketamine / esketamine screen for {result.patient}"]
    for product in result.products:
        verdict = contract["verdicts"].get(product, contract["verdict"])
        lines.append(f"Verdict for {PRODUCT_NAMES[product]}: "
                     f"{VERDICTS[verdict].line(PRODUCT_NAMES[product])}")
    lines.append(f"Evaluated as of {contract['as_of']} with ruleset {result.ruleset}")
    if result.eligibility is not None:
        lines.extend(_eligibility_lines(result.eligibility))
    all_products = len(result.products) == 1
    for kind in KINDS:
        group = [f for f in result.findings if f.kind == kind.kind]
        if not group:
            continue
        lines.append("")
        lines.append(f"{kind.heading} ({len(group)})")
        for finding in group:
            lines.extend(_finding_lines(
                finding, all_products or tuple(finding.products) == tuple(result.products)))
    if not result.findings:
        lines.append("")
        lines.append("No findings.")
    return "\n".join(lines) + "\n"
