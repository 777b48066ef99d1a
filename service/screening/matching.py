"""Condition matching, compiled once per ruleset from the rule maps.

REFERENCE, Which records count (Matching): by code first (ICD-10-CM by prefix, range or pattern,
minus ``except``; SNOMED CT), then by value-set membership (exact system and code), then by name
in the record's text and displays (whole words, case-insensitive). Family history never counts.
A code match is never vetoed by negation; a name is not counted when free text (``code.text`` that
is not a copy of a display, or a note) negates it, when a local cue precedes it, or when the record
carries a code the rule excludes. Drugs are matched in :mod:`service.screening.drugs`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from service.screening.codes import CodeSet, IcdList, icd_key, member_key
from service.screening.drugs import DrugIndex
from service.screening.model import Concept
from service.screening.ruleset import DEFAULT_RULESET, Maps, Ruleset, Terminology, load_maps
from service.screening.schema import CodedDefinition, ConditionRule
from service.screening.text import NegationScope, words_pattern

__all__ = ["ConditionHit", "Matcher", "default_matcher", "icd_key", "matcher_for"]

_CACHE_LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class ConditionHit:
    rule: ConditionRule
    recent_code: bool
    """The record also matches the rule's recency definition (``recent``)."""


@dataclass(slots=True)
class Matcher:
    maps: Maps
    ruleset: Ruleset = field(init=False)
    terminology: Terminology = field(init=False)
    scope: NegationScope = field(init=False)
    drugs: DrugIndex = field(init=False)
    _conditions: list[tuple[ConditionRule, CodeSet, CodeSet | None]] = field(init=False)
    _family_icd: IcdList = field(init=False)
    _family_snomed: frozenset[str] = field(init=False)
    _family_cues: re.Pattern[str] | None = field(init=False)
    _named: dict[str, CodeSet] = field(init=False)
    indexed_loinc: frozenset[str] = field(init=False)
    """LOINC codes whose observations the rules look up by code (not blood pressure)."""
    _cache: dict[tuple[object, ...], object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ruleset = self.maps.ruleset
        self.terminology = self.maps.terminology
        self.scope = NegationScope.build(self.terminology.negation)
        self._conditions = [
            (rule, self.code_set(rule), self.code_set(rule.recent) if rule.recent else None)
            for rule in self.ruleset.conditions
        ]
        fh = self.terminology.family_history
        self._family_icd = IcdList.build(fh.icd10cm_ranges)
        self._family_snomed = frozenset(e.code for e in fh.snomed)
        self._family_cues = words_pattern(fh.cues)
        self._named = {}
        if self.ruleset.eligibility is not None:
            self._named["depression"] = self.code_set(self.ruleset.eligibility.diagnosis)
            self._named["suicidality"] = self.code_set(self.ruleset.eligibility.suicidality)
        self.drugs = DrugIndex(self.maps, self.scope)
        codes = self.ruleset.observations
        self.indexed_loinc = frozenset(
            [*codes.pregnancy_status, *codes.body_weight,
             *(c for r in self.ruleset.observation_required for c in r.codes)])

    def code_set(self, definition: CodedDefinition) -> CodeSet:
        systems = self.terminology.systems.map
        members = [member_key(system, code, systems)
                   for vs in definition.valuesets
                   for system, code in self.maps.valuesets[vs].members]
        return CodeSet.build(definition, members)

    def _remember(self, key: tuple[object, ...], value: object) -> None:
        # Concepts repeat across patients (the same drug, the same diagnosis), so a memo pays;
        # the bound keeps a long-running service from growing with every new free text.
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = value

    # Records that never count -------------------------------------------------------------

    def is_family_history(self, concept: Concept) -> bool:
        for system, code in concept.codes:
            if system == "icd10cm" and self._family_icd.matches(code):
                return True
            if system == "snomed" and code in self._family_snomed:
                return True
        cues = self._family_cues
        return cues is not None and any(cues.search(t) for t in concept.texts)

    # Conditions -------------------------------------------------------------------------

    def matches(self, codes: CodeSet, concept: Concept, notes: tuple[str, ...]) -> bool:
        """The definition's codes, else (no excluded code) its names, as the reference says."""
        if codes.code_match(concept):
            return True
        if codes.excluded(concept):
            return False
        scanner, scope = codes.names, self.scope
        if not any(scanner.found(t, scope, free=t in concept.free_texts) for t in concept.texts):
            return False
        return not any(scanner.negated_in(note, scope) for note in notes)

    def condition_rules(self, concept: Concept,
                        notes: tuple[str, ...] = ()) -> tuple[ConditionHit, ...]:
        """Condition rules this record matches (family history, negation, excepts applied)."""
        key = ("condition", concept, notes)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._condition_rules(concept, notes)
            self._remember(key, cached)
        return cached  # type: ignore[return-value]

    def _condition_rules(self, concept: Concept,
                         notes: tuple[str, ...]) -> tuple[ConditionHit, ...]:
        if self.is_family_history(concept):
            return ()
        hits = []
        for rule, codes, recent in self._conditions:
            if self.matches(codes, concept, notes):
                is_recent = recent is not None and self.matches(recent, concept, notes)
                hits.append(ConditionHit(rule, is_recent))
        return tuple(hits)

    def classify_condition(self, concept: Concept, notes: tuple[str, ...] = ()) -> tuple[
            tuple[ConditionHit, ...], bool, bool]:
        """(rule hits, a depression diagnosis?, suicidality?) in one memo lookup."""
        key = ("classified", concept, notes)
        cached = self._cache.get(key)
        if cached is None:
            cached = (self.condition_rules(concept, notes),
                      self.named("depression", concept, notes),
                      self.named("suicidality", concept, notes))
            self._remember(key, cached)
        return cached  # type: ignore[return-value]

    def named(self, which: str, concept: Concept, notes: tuple[str, ...] = ()) -> bool:
        """The eligibility definitions: ``depression`` or ``suicidality``."""
        key = (which, concept, notes)
        cached = self._cache.get(key)
        if cached is None:
            codes = self._named.get(which)
            cached = codes is not None and not self.is_family_history(concept) and self.matches(
                codes, concept, notes)
            self._remember(key, cached)
        return bool(cached)

    def is_ketamine(self, concept: Concept) -> bool:
        """Ketamine or esketamine, for the hypersensitivity contraindication."""
        return self.drugs.is_ketamine(concept) and not self.is_family_history(concept)


@lru_cache(maxsize=4)
def matcher_for(version: str = DEFAULT_RULESET) -> Matcher:
    """The matcher for one shipped ruleset, built once per process."""
    return Matcher(load_maps(version))


def default_matcher() -> Matcher:
    return matcher_for(DEFAULT_RULESET)
