"""Code and name matching, compiled once from the rule maps.

Matching order follows the reference ('Which records count', Matching): by code first
(ICD-10-CM by prefix or category range, SNOMED CT, RxNorm, ATC by prefix), then by name in the
record's text and displays (whole words, case-insensitive). Family-history and negated records
never count; a name preceded by a local negation ("without psychotic features") is no match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from service.screening.model import Concept
from service.screening.ruleset import (
    ConditionRule,
    InteractionClass,
    Ruleset,
    Terminology,
    load_ruleset,
)

__all__ = ["Matcher", "default_matcher", "icd_key"]

_CLAUSE_BREAK = re.compile(r"[,;:.()\[\]|/]")
_LOCAL_WINDOW_WORDS = 4
_CACHE_LIMIT = 50_000


def icd_key(code: str) -> str:
    """ICD-10-CM codes compare without the dot and in upper case: ``i71.40`` -> ``I7140``."""
    return code.replace(".", "").strip().upper()


def _words_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation of whole-word phrases, longest first so that the longest phrase wins."""
    unique = sorted({p.strip().lower() for p in phrases if p.strip()}, key=len, reverse=True)
    if not unique:
        return None
    parts = []
    for phrase in unique:
        body = r"\s+".join(re.escape(word) for word in phrase.split())
        left = r"(?<!\w)" if phrase[0].isalnum() else ""
        right = r"(?!\w)" if phrase[-1].isalnum() else ""
        parts.append(f"{left}{body}{right}")
    return re.compile("|".join(parts), re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _IcdList:
    prefixes: tuple[str, ...] = ()
    ranges: tuple[tuple[str, str], ...] = ()

    @classmethod
    def build(cls, entries: Iterable[str]) -> _IcdList:
        prefixes: list[str] = []
        ranges: list[tuple[str, str]] = []
        for entry in entries:
            if "-" in entry:
                start, end = entry.split("-")
                ranges.append((icd_key(start), icd_key(end)))
            else:
                prefixes.append(icd_key(entry))
        return cls(tuple(prefixes), tuple(ranges))

    def matches(self, code: str) -> bool:
        if code.startswith(self.prefixes):
            return True
        # Categories order as strings (digits before letters), so "O9A" falls inside O00-O9A.
        category = code[:3]
        return any(start <= category <= end for start, end in self.ranges)


@dataclass(slots=True)
class _NameRule:
    names: re.Pattern[str] | None
    excluded: re.Pattern[str] | None


@dataclass(slots=True)
class Matcher:
    ruleset: Ruleset
    terminology: Terminology
    _condition_icd: dict[str, _IcdList] = field(default_factory=dict)
    _condition_snomed: dict[str, frozenset[str]] = field(default_factory=dict)
    _condition_names: dict[str, _NameRule] = field(default_factory=dict)
    _family_icd: _IcdList = field(default_factory=_IcdList)
    _family_snomed: frozenset[str] = frozenset()
    _family_cues: re.Pattern[str] | None = None
    _negation_cues: re.Pattern[str] | None = None
    _local_negation: re.Pattern[str] | None = None
    _drug_rxnorm: dict[str, str] = field(default_factory=dict)
    _drug_atc: tuple[tuple[str, str], ...] = ()
    _drug_names: re.Pattern[str] | None = None
    _drug_name_class: dict[str, str] = field(default_factory=dict)
    _ketamine_codes: frozenset[tuple[str, str]] = frozenset()
    _ketamine_names: re.Pattern[str] | None = None
    _cache: dict[tuple[str, Concept], object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rule in self.ruleset.conditions:
            self._condition_icd[rule.id] = _IcdList.build(rule.icd10cm)
            self._condition_snomed[rule.id] = frozenset(e.code for e in rule.snomed)
            self._condition_names[rule.id] = _NameRule(
                _words_pattern(rule.names), _words_pattern(rule.exclude_phrases)
            )
        fh = self.terminology.family_history
        self._family_icd = _IcdList.build(fh.icd10cm_ranges)
        self._family_snomed = frozenset(e.code for e in fh.snomed)
        self._family_cues = _words_pattern(fh.cues)
        self._negation_cues = _words_pattern(self.terminology.negation.cues)
        self._local_negation = _words_pattern(self.terminology.negation.local_cues)
        names: dict[str, str] = {}
        atc: list[tuple[str, str]] = []
        for cls in self.ruleset.interactions:
            atc += [(code.upper(), cls.id) for code in cls.atc]
            for member in cls.members:
                if member.rxnorm:
                    self._drug_rxnorm[member.rxnorm] = cls.id
                for name in (member.name, *member.brands):
                    names[name.lower()] = cls.id
        self._drug_atc = tuple(sorted(atc, key=lambda pair: -len(pair[0])))
        self._drug_names = _words_pattern(names)
        self._drug_name_class = names
        allergy = self.ruleset.allergy
        self._ketamine_codes = frozenset(
            [("rxnorm", e.code) for e in allergy.rxnorm] + [("atc", c.upper()) for c in allergy.atc]
        )
        self._ketamine_names = _words_pattern(allergy.names)

    def _remember(self, key: tuple[str, Concept], value: object) -> None:
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
        return self._family_cues is not None and any(
            self._family_cues.search(text) for text in concept.texts
        )

    def is_negated(self, concept: Concept) -> bool:
        return self._negation_cues is not None and any(
            self._negation_cues.search(text) for text in concept.texts
        )

    def does_not_count(self, concept: Concept) -> bool:
        return self.is_family_history(concept) or self.is_negated(concept)

    # Conditions -------------------------------------------------------------------------

    def condition_rules(self, concept: Concept) -> tuple[ConditionRule, ...]:
        """Condition rules this concept matches (family history and negation already applied)."""
        key = ("condition", concept)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._condition_rules(concept)
            self._remember(key, cached)
        return cached  # type: ignore[return-value]

    def _condition_rules(self, concept: Concept) -> tuple[ConditionRule, ...]:
        if self.does_not_count(concept):
            return ()
        matched = []
        for rule in self.ruleset.conditions:
            if self._condition_code_match(rule.id, concept) or self._name_match(
                self._condition_names[rule.id], concept.texts
            ):
                matched.append(rule)
        return tuple(matched)

    def _condition_code_match(self, rule_id: str, concept: Concept) -> bool:
        icd = self._condition_icd[rule_id]
        snomed = self._condition_snomed[rule_id]
        for system, code in concept.codes:
            if system == "icd10cm" and icd.matches(code):
                return True
            if system == "snomed" and code in snomed:
                return True
        return False

    def _name_match(self, rule: _NameRule, texts: Iterable[str]) -> bool:
        if rule.names is None:
            return False
        for text in texts:
            if rule.excluded is not None:
                text = rule.excluded.sub(" ", text)
            for found in rule.names.finditer(text):
                if not self._locally_negated(text, found.start()):
                    return True
        return False

    def _locally_negated(self, text: str, start: int) -> bool:
        if self._local_negation is None:
            return False
        clause = _CLAUSE_BREAK.split(text[:start])[-1]
        words = clause.split()[-_LOCAL_WINDOW_WORDS:]
        return bool(self._local_negation.search(" ".join(words)))

    # Medicines --------------------------------------------------------------------------

    def interaction_classes(self, concept: Concept) -> tuple[InteractionClass, ...]:
        key = ("drug", concept)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._interaction_classes(concept)
            self._remember(key, cached)
        return cached  # type: ignore[return-value]

    def _interaction_classes(self, concept: Concept) -> tuple[InteractionClass, ...]:
        if self.does_not_count(concept):
            return ()
        found: set[str] = set()
        for system, code in concept.codes:
            if system == "rxnorm" and code in self._drug_rxnorm:
                found.add(self._drug_rxnorm[code])
            elif system == "atc":
                found.update(cls for prefix, cls in self._drug_atc if code.startswith(prefix))
        if self._drug_names is not None:
            for text in concept.texts:
                for hit in self._drug_names.finditer(text):
                    if not self._locally_negated(text, hit.start()):
                        name = " ".join(hit.group(0).lower().split())
                        found.add(self._drug_name_class[name])
        return tuple(cls for cls in self.ruleset.interactions if cls.id in found)

    def is_ketamine(self, concept: Concept) -> bool:
        """Ketamine or esketamine, for the hypersensitivity contraindication."""
        if self.does_not_count(concept):
            return False
        if any((s, c.upper() if s == "atc" else c) in self._ketamine_codes
               for s, c in concept.codes):
            return True
        return self._name_match(_NameRule(self._ketamine_names, None), concept.texts)


@lru_cache(maxsize=1)
def default_matcher() -> Matcher:
    """The matcher for the shipped maps, built once per process."""
    ruleset, terminology = load_ruleset()
    return Matcher(ruleset, terminology)
