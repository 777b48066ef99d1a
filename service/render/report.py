"""The screening result as text for people: verdict first, then findings grouped by kind."""

from __future__ import annotations

from service.screening.model import Finding, ScreeningResult

__all__ = ["text_report"]

_HEADINGS = (
    ("contraindication", "Contraindications"),
    ("precaution", "Precautions"),
    ("interaction", "Drug interactions"),
    ("missing-data", "Missing data"),
    ("info", "Information"),
)
_VERDICT_LINE = {
    "contraindicated": "CONTRAINDICATED - do not give ketamine or esketamine",
    "needs-review": "NEEDS REVIEW - a clinician must weigh the findings below before dosing",
    "insufficient-data": "INSUFFICIENT DATA - collect what is missing, then screen again",
    "suitable": "SUITABLE - no contraindication, precaution or missing data found",
}


def _finding_lines(finding: Finding) -> list[str]:
    lines = [f"  - {finding.summary}  [{finding.rule}, {finding.severity}]"]
    for ref, label, when in finding.records:
        stamp = when.date().isoformat() if when else "date not recorded"
        lines.append(f"      record: {ref} ({label}; recorded {stamp})")
    if finding.detail:
        lines.append(f"      action: {finding.detail}")
    lines.append(f"      source: {finding.source}")
    return lines


def text_report(result: ScreeningResult) -> str:
    contract = result.as_contract()
    lines = [
        f"Ketamine / esketamine screen for {result.patient}",
        f"Verdict: {_VERDICT_LINE[contract['verdict']]}",
        f"Evaluated as of {contract['as_of']} with ruleset {result.ruleset}",
    ]
    for kind, heading in _HEADINGS:
        group = [f for f in result.findings if f.kind == kind]
        if not group:
            continue
        lines.append("")
        lines.append(f"{heading} ({len(group)})")
        for finding in group:
            lines.extend(_finding_lines(finding))
    if not result.findings:
        lines.append("")
        lines.append("No findings.")
    return "\n".join(lines) + "\n"
