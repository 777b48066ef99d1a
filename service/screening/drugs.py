"""What drug a medication record is: interaction classes, antidepressants, ketamine itself.

REFERENCE, Drug interactions and Which records count. A class matches by ingredient RxNorm code,
by product code in its CDC value sets, by ATC prefix (minus ``except``), or by ingredient or brand
name. **A code decides what a record is**: when a record carries a code these maps recognise, the
record is what the code says and its display cannot make it another drug; the display and the
code's meaning are both kept, so a finding can show the conflict. Codes marked ``verify`` match
but do not decide (they were not confirmed against a release file).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from service.screening.codes import member_key
from service.screening.model import Concept
from service.screening.ruleset import Maps
from service.screening.schema import Antidepressant, InteractionClass
from service.screening.text import NameScanner, NegationScope, normal, words_pattern

__all__ = ["AntidepressantHit", "DrugIndex", "DrugMatch"]


@dataclass(frozen=True, slots=True)
class DrugMatch:
    classes: tuple[InteractionClass, ...]
    code_label: str | None = None
    """What the record's deciding code stands for, when its display names another drug."""


@dataclass(frozen=True, slots=True)
class AntidepressantHit:
    ingredient: str
    drug_class: str


_T = TypeVar("_T")
_MEMO_LIMIT = 50_000
_BEFORE_DOSE = re.compile(r"\d")
_INGREDIENT_WORDS = re.compile(r"[a-z]{4,}")


def _any(pattern: re.Pattern[str] | None, texts: Iterable[str]) -> bool:
    return pattern is not None and any(pattern.search(t) for t in texts)


def _dose_pattern(doses: list[float]) -> re.Pattern[str] | None:
    if not doses:
        return None
    numbers = "|".join(re.escape(f"{d:g}") for d in doses)
    return re.compile(rf"(?<![\d.])(?:{numbers})(?:\.0+)?\s*mg(?!\s*/)", re.IGNORECASE)


@dataclass(slots=True)
class _Antidepressant:
    member: Antidepressant
    drug_class: str
    not_with: re.Pattern[str] | None
    only_with: re.Pattern[str] | None
    doses: re.Pattern[str] | None

    def allowed(self, texts: Iterable[str]) -> bool:
        texts = list(texts)
        if _any(self.not_with, texts) or _any(self.doses, texts):
            return False
        return self.only_with is None or _any(self.only_with, texts)


class DrugIndex:
    """The drug maps of one ruleset, compiled once."""

    def __init__(self, maps: Maps, scope: NegationScope) -> None:
        ruleset = maps.ruleset
        systems = maps.terminology.systems.map
        self.scope = scope
        self.classes = {c.id: c for c in ruleset.interactions}
        self.deciding: dict[tuple[str, str], str] = {}
        """Codes that decide what a record is -> what the code stands for."""
        self.by_code: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.atc: list[tuple[str, str]] = []
        self.atc_except: dict[str, tuple[str, ...]] = {}
        name_owner: dict[str, tuple[str, re.Pattern[str] | None]] = {}
        for cls in ruleset.interactions:
            self.atc += [(code.upper(), cls.id) for code in cls.atc]
            self.atc_except[cls.id] = tuple(c.upper() for c in cls.atc_except)
            for member in cls.members:
                veto = words_pattern(member.not_with)
                if member.rxnorm:
                    self.by_code["rxnorm", member.rxnorm].add(cls.id)
                    if not member.rxnorm_verify:
                        self.deciding["rxnorm", member.rxnorm] = member.name
                for name in (member.name, *member.brands):
                    name_owner[normal(name)] = (cls.id, veto)
            for use in cls.valuesets:
                only, without = words_pattern(use.only), words_pattern(use.without)
                for (system, code), display in maps.valuesets[use.id].members.items():
                    if only is not None and not only.search(display):
                        continue
                    if without is not None and without.search(display):
                        continue
                    key = member_key(system, code, systems)
                    self.by_code[key].add(cls.id)
                    self.deciding[key] = display
        self.atc.sort(key=lambda pair: -len(pair[0]))
        self.names = NameScanner.build(name_owner)
        self.name_owner = name_owner
        allergy = ruleset.allergy
        self.ketamine_codes = frozenset(
            [("rxnorm", e.code) for e in allergy.rxnorm]
            + [("atc", c.upper()) for c in allergy.atc])
        self.ketamine_names = NameScanner.build(allergy.names)
        for e in allergy.rxnorm:
            if not e.verify:
                self.deciding["rxnorm", e.code] = e.display
        rescue = ruleset.rescue
        self.rescue_codes = frozenset(
            [("rxnorm", c) for c in rescue.rxnorm] + [("atc", c) for c in rescue.atc]
        ) if rescue else frozenset()
        self.rescue_names = NameScanner.build(rescue.ingredients if rescue else ())
        self.rescue_phrases = words_pattern(rescue.phrases if rescue else ())
        self._antidepressants(maps)
        self._memo: dict[tuple[object, ...], object] = {}

    def _cached(self, key: tuple[object, ...], compute: Callable[[], _T]) -> _T:
        # The same drugs recur in every record and every patient; the bound keeps a long-running
        # service from growing with each new free text.
        try:
            return self._memo[key]  # type: ignore[return-value]
        except KeyError:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            value = self._memo[key] = compute()
            return value

    # -- Interactions ----------------------------------------------------------------------

    def _code_classes(self, concept: Concept) -> tuple[set[str], str | None]:
        found: set[str] = set()
        label: str | None = None
        for system, code in concept.codes:
            key = (system, code)
            if system == "atc":
                code = code.upper()
                for prefix, cls_id in self.atc:
                    if code.startswith(prefix) and not code.startswith(self.atc_except[cls_id]):
                        found.add(cls_id)
                        label = label or f"ATC {code}"
                if code.startswith(self.ad_atc) and not code.startswith(self.ad_atc_except):
                    label = label or f"ATC {code}"
            else:
                found |= self.by_code.get(key, set())
                if key in self.deciding:
                    label = label or self.deciding[key]
        return found, label

    def _name_classes(self, concept: Concept) -> set[str]:
        found: set[str] = set()
        for text in concept.texts:
            for name in self.names.found(text, self.scope, free=text in concept.free_texts):
                cls_id, veto = self.name_owner[name]
                if veto is None or not _any(veto, concept.texts):
                    found.add(cls_id)
        return found

    def classify(self, concept: Concept, as_needed: bool, context: tuple[str, ...]) -> tuple[
            DrugMatch, bool, tuple[AntidepressantHit, ...], bool]:
        """(interaction classes, a rescue device?, antidepressants, taken by mouth?) in one memo
        lookup."""
        return self._cached(("classify", concept, as_needed, context), lambda: (
            self.interaction(concept), self.is_rescue(concept, as_needed, context),
            self.antidepressants(concept, context),
            not _any(self.not_oral, (*concept.texts, *context))))

    def is_rescue(self, concept: Concept, as_needed: bool, context: tuple[str, ...]) -> bool:
        """An as-needed epinephrine rescue device (auto-injector): never an interaction."""
        return self._cached(("rescue", concept, as_needed, context),
                            lambda: self._is_rescue(concept, as_needed, context))

    def _is_rescue(self, concept: Concept, as_needed: bool, context: tuple[str, ...]) -> bool:
        epinephrine = bool(self.rescue_codes & concept.codes) or any(
            self.rescue_names.hits(t) for t in concept.texts)
        if not epinephrine:
            return False
        return as_needed or _any(self.rescue_phrases, (*concept.texts, *context))

    def meaning(self, texts: Iterable[str]) -> set[str]:
        """What the drug names in ``texts`` stand for: interaction classes and antidepressants."""
        out: set[str] = set()
        for text in texts:
            out.update(self.name_owner[n][0] for n in self.names.found(text, self.scope,
                                                                         free=False))
            out.update(self.ad_names[n].member.name
                       for n in self.ad_scanner.found(text, self.scope, free=False))
        return out

    def interaction(self, concept: Concept) -> DrugMatch:
        return self._cached(("interaction", concept), lambda: self._interaction(concept))

    def _interaction(self, concept: Concept) -> DrugMatch:
        by_code, label = self._code_classes(concept)
        by_name = self._name_classes(concept)
        if label is None:
            return DrugMatch(self._ordered(by_code | by_name))
        # The code decides; its meaning is quoted when the display names another drug.
        return DrugMatch(self._ordered(by_code),
                         label if by_name - by_code or self._conflict(label, concept) else None)

    def _conflict(self, label: str, concept: Concept) -> bool:
        """The record's texts name no ingredient of what its code stands for."""
        said = self.meaning(concept.texts)
        if said:
            means = self.meaning([label])
            return bool(means) and not said & means
        ingredients = {w for part in label.lower().split("/")
                       for w in _INGREDIENT_WORDS.findall(_BEFORE_DOSE.split(part)[0])}
        words = {w for t in concept.texts for w in _INGREDIENT_WORDS.findall(t.lower())}
        return bool(ingredients) and not ingredients & words

    def _ordered(self, ids: set[str]) -> tuple[InteractionClass, ...]:
        return tuple(cls for cid, cls in self.classes.items() if cid in ids)

    def is_ketamine(self, concept: Concept) -> bool:
        return self._cached(("ketamine", concept), lambda: self._is_ketamine(concept))

    def _is_ketamine(self, concept: Concept) -> bool:
        if self.ketamine_codes & {(s, c.upper() if s == "atc" else c) for s, c in concept.codes}:
            return True
        return any(self.ketamine_names.found(t, self.scope, free=t in concept.free_texts)
                   for t in concept.texts)

    # -- Antidepressants (eligibility) -----------------------------------------------------

    def _antidepressants(self, maps: Maps) -> None:
        self.ad_by_rxnorm: dict[str, _Antidepressant] = {}
        self.ad_by_atc: dict[str, _Antidepressant] = {}
        self.ad_names: dict[str, _Antidepressant] = {}
        self.ad_combinations: list[tuple[tuple[re.Pattern[str], ...], tuple[str, ...],
                                         _Antidepressant]] = []
        self.ad_atc: tuple[str, ...] = ()
        self.ad_atc_except: tuple[str, ...] = ()
        self.ad_atc_classes: Mapping[str, str] = {}
        rules = maps.ruleset.eligibility
        self.not_oral = words_pattern(rules.not_oral if rules else ())
        if rules is None:
            self.ad_scanner = NameScanner(None)
            return
        self.ad_atc = tuple(c.upper() for c in rules.atc)
        self.ad_atc_except = tuple(c.upper() for c in rules.atc_except)
        self.ad_atc_classes = {k.upper(): v for k, v in rules.atc_classes.items()}
        for drug_class, members in rules.classes.items():
            for m in members:
                entry = _Antidepressant(m, drug_class, words_pattern(m.not_with),
                                        words_pattern(m.only_with),
                                        _dose_pattern(m.not_with_doses_mg))
                if m.rxnorm:
                    self.ad_by_rxnorm[m.rxnorm] = entry
                    if not m.rxnorm_verify:
                        self.deciding["rxnorm", m.rxnorm] = m.name
                for code in m.atc:
                    self.ad_by_atc[code.upper()] = entry
                for name in (m.name, *m.brands):
                    self.ad_names[normal(name)] = entry
                if m.combination_of:
                    parts = tuple(p for n in m.combination_of
                                  if (p := words_pattern([n])) is not None)
                    self.ad_combinations.append((parts, tuple(m.combination_of), entry))
        self.ad_scanner = NameScanner.build(self.ad_names)

    def antidepressants(self, concept: Concept, context: tuple[str, ...]) -> tuple[
            AntidepressantHit, ...]:
        """The antidepressant ingredients this record is (none for a non-counting product)."""
        return self._cached(("antidepressants", concept, context),
                            lambda: self._antidepressant_hits(concept, context))

    def _antidepressant_hits(self, concept: Concept, context: tuple[str, ...]) -> tuple[
            AntidepressantHit, ...]:
        found: dict[str, _Antidepressant] = {}
        decided = False
        for system, code in concept.codes:
            if system == "rxnorm" and code in self.ad_by_rxnorm:
                entry = self.ad_by_rxnorm[code]
                found[entry.member.name] = entry
                decided = decided or not entry.member.rxnorm_verify
            elif system == "atc":
                code = code.upper()
                if not code.startswith(self.ad_atc) or code.startswith(self.ad_atc_except):
                    continue
                decided = True
                entry = self.ad_by_atc.get(code) or self._atc_entry(code)
                found[entry.member.name] = entry
            elif (system, code) in self.deciding:
                decided = True  # another drug's code: its display cannot make it an antidepressant
        if not decided:
            names = {name for t in concept.texts
                     for name in self.ad_scanner.found(t, self.scope, free=t in concept.free_texts)}
            for name in names:
                entry = self.ad_names[name]
                found[entry.member.name] = entry
            for patterns, parts, entry in self.ad_combinations:
                if all(_any(p, concept.texts) for p in patterns):
                    for part in parts:
                        found.pop(part, None)
                    found[entry.member.name] = entry
        texts = (*concept.texts, *context)
        return tuple(AntidepressantHit(e.member.name, e.drug_class)
                     for e in found.values() if e.allowed(texts))

    def _atc_entry(self, code: str) -> _Antidepressant:
        drug_class = next((c for prefix, c in sorted(self.ad_atc_classes.items(),
                                                     key=lambda kv: -len(kv[0]))
                           if code.startswith(prefix)), "Other")
        return _Antidepressant(Antidepressant(name=f"ATC {code}"), drug_class, None, None, None)
