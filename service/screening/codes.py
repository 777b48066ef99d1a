"""Code lists compiled for matching: ICD-10-CM prefixes, ranges and patterns; code sets.

REFERENCE, Which records count (Matching): ICD-10-CM codes match by prefix, ``A-B`` is a range of
categories, ``except`` removes codes; value sets match by exact system and code. A definition's
``except`` codes are also "excluded codes": a record that carries one does not match the
definition by name either (an excluded code wins over its display).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from service.screening.model import Concept
from service.screening.schema import CodedDefinition
from service.screening.text import NameScanner

__all__ = [
    "CodeSet",
    "IcdList",
    "icd_key",
    "member_key",
]


def icd_key(code: str) -> str:
    """ICD-10-CM codes compare without the dot and in upper case: ``i71.40`` -> ``I7140``."""
    return code.replace(".", "").strip().upper()


@dataclass(frozen=True, slots=True)
class IcdList:
    prefixes: tuple[str, ...] = ()
    ranges: tuple[tuple[str, str], ...] = ()
    patterns: re.Pattern[str] | None = None
    """Entries with a lower-case ``x`` (any one character), e.g. ``E05.x1``, ``F1x.x82``."""

    @classmethod
    def build(cls, entries: Iterable[str]) -> IcdList:
        prefixes: list[str] = []
        ranges: list[tuple[str, str]] = []
        patterns: list[str] = []
        for entry in entries:
            if "x" in entry:
                patterns.append(icd_key(entry).replace("X", "."))
            elif "-" in entry:
                start, end = entry.split("-")
                ranges.append((icd_key(start), icd_key(end)))
            else:
                prefixes.append(icd_key(entry))
        compiled = re.compile("|".join(patterns)) if patterns else None
        return cls(tuple(prefixes), tuple(ranges), compiled)

    def matches(self, code: str) -> bool:
        if code.startswith(self.prefixes):
            return True
        if self.patterns is not None and self.patterns.match(code):
            return True
        # Categories order as strings (digits before letters), so "O9A" falls inside O00-O9A.
        category = code[:3]
        return any(start <= category <= end for start, end in self.ranges)

    def __bool__(self) -> bool:
        return bool(self.prefixes or self.ranges or self.patterns)


def member_key(system: str, code: str, systems: Mapping[str, str]) -> tuple[str, str]:
    """A value set member as a Concept code: (system key, normalised code)."""
    key = systems.get(system, system)
    return key, icd_key(code) if key == "icd10cm" else code.strip()


@dataclass(frozen=True, slots=True)
class CodeSet:
    """One coded definition (a condition rule, the depression diagnosis, ...), compiled."""

    icd: IcdList
    icd_except: IcdList
    snomed: frozenset[str]
    snomed_except: frozenset[str]
    members: frozenset[tuple[str, str]]
    """Value-set members, as (system key, normalised code)."""
    names: NameScanner

    @classmethod
    def build(cls, d: CodedDefinition, members: Iterable[tuple[str, str]] = ()) -> CodeSet:
        icd_except = IcdList.build(d.except_icd10cm)
        kept = frozenset(m for m in members
                         if not (m[0] == "icd10cm" and icd_except.matches(m[1])))
        return cls(IcdList.build(d.icd10cm), icd_except, frozenset(e.code for e in d.snomed),
                   frozenset(d.except_snomed), kept,
                   NameScanner.build(d.names, d.exclude_phrases, d.veto_phrases))

    def code_match(self, concept: Concept) -> bool:
        for system, code in concept.codes:
            if system == "icd10cm":
                if self.icd.matches(code) and not self.icd_except.matches(code):
                    return True
            elif system == "snomed" and code in self.snomed:
                return True
            if (system, code) in self.members:
                return True
        return False

    def excluded(self, concept: Concept) -> bool:
        """The record carries a code this definition explicitly excludes."""
        for system, code in concept.codes:
            if system == "icd10cm" and self.icd_except and self.icd_except.matches(code):
                return True
            if system == "snomed" and code in self.snomed_except:
                return True
        return False
