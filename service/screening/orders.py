"""Whether a CDS hook's draft orders concern ketamine or esketamine, and which of the two.

A CDS service answers ``{"cards": []}`` unless they do (https://cds-hooks.hl7.org/2.0/#cds-service-response).
The orders arrive as records (service.fhir.prefetch.draft_orders) and are matched like any
medication record: by RxNorm, ATC or name, with the allergy rule's lists (the engine's matcher).
Which product an order is for (REFERENCE, Two products, one screen: "the CDS Hooks order names its
product") comes from the same rule's ``order_products``: a code decides before a name, as
everywhere in the engine; an order that names both products, or neither clearly, is screened for
both.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.screening.matching import Matcher, default_matcher
from service.screening.model import Concept, RawPatientData
from service.screening.normalise import normalise
from service.screening.schema import PRODUCTS, AllergyRule, Product
from service.screening.text import NameScanner

__all__ = ["holds_ketamine", "ordered_products"]


def holds_ketamine(orders: RawPatientData, matcher: Matcher | None = None) -> bool:
    """True when a draft MedicationRequest among ``orders`` is ketamine or esketamine."""
    return bool(ordered_products(orders, matcher))


@dataclass(frozen=True, slots=True)
class _ProductIndex:
    codes: dict[tuple[str, str], Product]
    names: dict[Product, NameScanner]

    def of(self, concept: Concept, matcher: Matcher) -> tuple[Product, ...]:
        """The products one ketamine record names: by code, else by name, else both."""
        by_code = {self.codes[key] for s, c in concept.codes
                   if (key := (s, c.upper() if s == "atc" else c)) in self.codes}
        found = by_code or {p for p, scanner in self.names.items()
                            if any(scanner.found(t, matcher.scope, free=t in concept.free_texts)
                                   for t in concept.texts)}
        return tuple(p for p in PRODUCTS if p in found) if len(found) == 1 else PRODUCTS


_INDEXES: dict[str, _ProductIndex] = {}


def _index_of(matcher: Matcher) -> _ProductIndex:
    """Built once per ruleset version (the maps of a version never change in a process)."""
    version = matcher.ruleset.version
    if version not in _INDEXES:
        _INDEXES[version] = _index(matcher.ruleset.allergy)
    return _INDEXES[version]


def _index(rule: AllergyRule) -> _ProductIndex:
    codes: dict[tuple[str, str], Product] = {}
    names: dict[Product, list[str]] = {p: [] for p in PRODUCTS}
    rxnorm = {e.code for e in rule.rxnorm}
    atc = {c.upper() for c in rule.atc}
    for identifier, product in rule.order_products.items():
        if identifier in rxnorm:
            codes["rxnorm", identifier] = product
        elif identifier.upper() in atc:
            codes["atc", identifier.upper()] = product
        else:
            names[product].append(identifier)
    return _ProductIndex(codes, {p: NameScanner.build(n) for p, n in names.items() if n})


def ordered_products(orders: RawPatientData,
                     matcher: Matcher | None = None) -> tuple[Product, ...]:
    """The products the ketamine orders among ``orders`` are for, in the engine's order; ``()``
    when no order is ketamine or esketamine."""
    matcher = matcher or default_matcher()
    facts = normalise(orders, matcher.terminology)
    index = _index_of(matcher)
    found: set[Product] = set()
    for med in facts.medications:
        if matcher.is_ketamine(med.concept):
            found.update(index.of(med.concept, matcher))
    return tuple(p for p in PRODUCTS if p in found)
