"""The words people read about a result: one table for verdicts, one for kinds of finding.

The text report, the clinician's pages and the CDS cards all read these tables. A verdict's and a
kind's name are the displays of the screening CodeSystem (``fhir_maps/codesystems/screening.json``);
what to do about it, the symbol that repeats the colour, the headings and the card prefixes are
here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from service.fhir.codesystems import CS_SCREENING, display
from service.screening.policy import num

__all__ = [
    "BOTH_PRODUCTS",
    "ELIGIBILITY",
    "KINDS",
    "PRODUCT_NAMES",
    "VERDICTS",
    "EligibilityText",
    "KindText",
    "VerdictText",
    "card_product",
    "limits_line",
]

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
    card_text: str
    """What a CDS card's summary starts with; ``{product}`` is what the order is for."""

    def card_prefix(self, products: Sequence[str] = ()) -> str:
        """``Esketamine contraindicated`` for one product, ``Ketamine/esketamine ...`` for
        both."""
        text = self.card_text.format(product=card_product(products))
        return text[0].upper() + text[1:]


def card_product(products: Sequence[str]) -> str:
    """How a card names the products screened: one by its name, both as ``ketamine/esketamine``."""
    return products[0] if len(products) == 1 else "ketamine/esketamine"


KINDS: tuple[KindText, ...] = (
    KindText("contraindication", "Contraindications", "What to do", "{product} contraindicated"),
    KindText("precaution", "Precautions", "What to do", "Review before {product}"),
    KindText("interaction", "Drug interactions", "Management", "{product} interaction"),
    KindText("missing-data", "Missing data", "What to collect", "{product} screen incomplete"),
    KindText("info", "Information", "Note", "{product}"),
)
"""In the order reports and pages show them."""


@dataclass(frozen=True, slots=True)
class EligibilityText:
    code: str
    symbol: str
    """Not the verdicts' shapes: eligibility is a separate answer, never a safety signal."""

    @property
    def title(self) -> str:
        return display(CS_SCREENING, self.code)


ELIGIBILITY: dict[str, EligibilityText] = {e.code: e for e in (
    EligibilityText("trd-documented", "\u25cf"),
    EligibilityText("mdsi-pathway", "\u25d0"),
    EligibilityText("not-documented", "\u25cb"),
)}
"""Eligibility (REFERENCE, Indication): never "not eligible", as the record may be incomplete."""


def _mmhg(thresholds: Mapping[str, float], which: str) -> str:
    return (f"{num(thresholds[f'bp_systolic_{which}'])}/"
            f"{num(thresholds[f'bp_diastolic_{which}'])} mmHg")


def limits_line(thresholds: Mapping[str, float]) -> str:
    """The blood-pressure limits a result was computed with, in words (pages, cards)."""
    if "bp_systolic_uncontrolled" not in thresholds:
        return ""
    line = (f"Blood pressure limits in force: uncontrolled above "
            f"{_mmhg(thresholds, 'uncontrolled')}, elevated above "
            f"{_mmhg(thresholds, 'elevated')}")
    if "bp_systolic_guide_65" in thresholds:
        line += f" (65 and older: {_mmhg(thresholds, 'guide_65')})"
    if "bp_window_days" in thresholds:
        line += f"; the latest reading of the last {num(thresholds['bp_window_days'])} days counts"
    return line + "."
