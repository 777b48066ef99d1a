"""The words people read about a result: one table for verdicts, one for kinds of finding.

The text report, the clinician's pages and the CDS cards all read these tables. A verdict's and a
kind's name are the displays of the screening CodeSystem (``fhir_maps/codesystems/screening.json``);
what to do about it, the symbol that repeats the colour, the headings and the card prefixes are
here.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.fhir.codesystems import CS_SCREENING, display

__all__ = ["BOTH_PRODUCTS", "KINDS", "PRODUCT_NAMES", "VERDICTS", "KindText", "VerdictText"]

PRODUCT_NAMES = {"ketamine": "ketamine", "esketamine": "esketamine (Spravato)"}
"""How the report names each product."""
BOTH_PRODUCTS = "ketamine or esketamine"


@dataclass(frozen=True, slots=True)
class VerdictText:
    code: str
    text: str
    """What to do; ``{product}`` stands for the product the verdict is for."""
    symbol: str
    """A shape that repeats the colour's meaning for people who cannot tell colours apart."""

    @property
    def title(self) -> str:
        return display(CS_SCREENING, self.code)

    @property
    def advice(self) -> str:
        """What the page says (a verdict for both products)."""
        return self.text.format(product=BOTH_PRODUCTS)

    def line(self, product: str = BOTH_PRODUCTS) -> str:
        """The text report's verdict line: ``CONTRAINDICATED - do not give ...``."""
        advice = self.text.format(product=product)
        return f"{self.title.upper()} - {advice[0].lower()}{advice[1:].rstrip('.')}"


VERDICTS: dict[str, VerdictText] = {v.code: v for v in (
    VerdictText("contraindicated", "Do not give {product}.", "\u2716"),
    VerdictText("needs-review", "A clinician must weigh the findings below before dosing.", "!"),
    VerdictText("insufficient-data", "Collect what is missing, then screen again.", "?"),
    VerdictText("suitable", "No contraindication, precaution or missing data found.", "\u2714"),
)}


@dataclass(frozen=True, slots=True)
class KindText:
    kind: str
    heading: str
    detail_label: str
    """How the page labels a finding's ``detail``."""
    card_prefix: str
    """What a CDS card's summary starts with."""


KINDS: tuple[KindText, ...] = (
    KindText("contraindication", "Contraindications", "What to do",
             "Ketamine/esketamine contraindicated"),
    KindText("precaution", "Precautions", "What to do", "Review before ketamine/esketamine"),
    KindText("interaction", "Drug interactions", "Management", "Ketamine/esketamine interaction"),
    KindText("missing-data", "Missing data", "What to collect",
             "Ketamine/esketamine screen incomplete"),
    KindText("info", "Information", "Note", "Ketamine/esketamine"),
)
"""In the order reports and pages show them."""
