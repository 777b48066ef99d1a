"""Loads and validates the rule maps in ``fhir_maps/`` (YAML and value sets), once per version.

The schema (:mod:`service.screening.schema`) is the contract for the data files: a file that does
not fit it stops start-up with a :class:`~service.errors.MapError` naming the file and the field.
Rules cite their sources by the short names declared in the same file; an unknown short name, or
(ruleset v2) a label section cited by number rather than by title, is an error too, so a rule with
no proper source cannot ship. Value sets are read as member lists (exact system and code).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from service.errors import InputError, MapError
from service.screening.schema import (
    AllergyRule,
    BloodPressureRules,
    ConditionRule,
    InteractionClass,
    Ruleset,
    SimpleRule,
    Terminology,
)

__all__ = [
    "DEFAULT_RULESET",
    "RULESETS",
    "RULESET_FILE",
    "AllergyRule",
    "BloodPressureRules",
    "ChoiceError",
    "ConditionRule",
    "InteractionClass",
    "Maps",
    "Ruleset",
    "SimpleRule",
    "Terminology",
    "ValueSet",
    "check_choice",
    "load_maps",
    "load_ruleset",
    "observation_search_codes",
    "read_map",
]

RULESETS = {"v1": "ruleset-v1.yaml", "v2": "ruleset-v2.yaml"}
DEFAULT_RULESET = "v2"
RULESET_FILE = RULESETS[DEFAULT_RULESET]
TERMINOLOGY_FILE = "terminology.yaml"
VALUESET_DIR = "valuesets"

# "SPRAVATO-PI 5.6", "KETALAR-PI 4": a label section cited by its number.
_NUMBERED = re.compile(r"-PI\s+\d")


class ChoiceError(InputError, ValueError):
    """An unknown ruleset or product was asked for; the message names the allowed values."""


@dataclass(frozen=True, slots=True)
class ValueSet:
    id: str
    url: str
    timestamp: str
    members: dict[tuple[str, str], str]
    """(system URI, code) -> display."""


@dataclass(frozen=True, slots=True)
class Maps:
    """One ruleset version with everything it reads: the terminology and its value sets."""

    ruleset: Ruleset
    terminology: Terminology
    valuesets: dict[str, ValueSet]


def _read_text(name: str) -> str:
    try:
        return resources.files("fhir_maps").joinpath(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise MapError(f"fhir_maps/{name}: cannot be read: {exc}") from exc


def read_map(name: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(_read_text(name))
    except yaml.YAMLError as exc:
        raise MapError(f"fhir_maps/{name}: cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise MapError(f"fhir_maps/{name}: expected a mapping at the top level")
    return data


_M = TypeVar("_M", bound=BaseModel)


def _validate(model: type[_M], name: str, data: dict[str, Any]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MapError(
            f"fhir_maps/{name}: {where}: {first['msg']} ({exc.error_count()} problem(s))"
        ) from exc


def _check_sources(ruleset: Ruleset, name: str) -> None:
    known = set(ruleset.sources) | {"REFERENCE"}
    for rule_id, source in ruleset.sourced():
        if not source.strip():
            raise MapError(f"fhir_maps/{name}: rule {rule_id} has no source")
        if not any(short in source for short in known):
            raise MapError(
                f"fhir_maps/{name}: rule {rule_id} cites {source!r}, "
                "which names none of the declared sources"
            )
        if ruleset.cite_by_title and _NUMBERED.search(source):
            raise MapError(f"fhir_maps/{name}: rule {rule_id} cites {source!r} by section "
                           "number; cite the section by its title")
    ids = [rule_id for rule_id, _ in ruleset.sourced()]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise MapError(f"fhir_maps/{name}: duplicate rule ids {duplicates}")
    rule_ids = set(ids)
    for cls in ruleset.interactions:
        if cls.mentions is not None and cls.mentions not in rule_ids:
            raise MapError(f"fhir_maps/{name}: {cls.id} mentions unknown rule {cls.mentions}")


def _valueset(ref_id: str, url: str, file: str) -> ValueSet:
    name = f"{VALUESET_DIR}/{file}"
    try:
        data = json.loads(_read_text(name))
        expansion = data["expansion"]
        members = {(c["system"], c["code"]): c.get("display", "")
                   for c in expansion["contains"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise MapError(f"fhir_maps/{name}: not a ValueSet with an expansion ({exc})") from exc
    if data.get("url") != url:
        raise MapError(f"fhir_maps/{name}: url is {data.get('url')!r}, the ruleset cites {url!r}")
    return ValueSet(ref_id, url, str(expansion.get("timestamp", "")), members)


def _check_valueset_ids(ruleset: Ruleset, name: str) -> None:
    declared = {v.id for v in ruleset.valuesets}
    used = [(r.id, v) for r in ruleset.conditions for v in r.valuesets]
    used += [(c.id, v.id) for c in ruleset.interactions for v in c.valuesets]
    for rule_id, vs in used:
        if vs not in declared:
            raise MapError(f"fhir_maps/{name}: {rule_id} uses undeclared value set {vs!r}")


def check_choice(value: str, allowed: tuple[str, ...] | list[str], what: str) -> str:
    if value not in allowed:
        raise ChoiceError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")
    return value


@lru_cache(maxsize=len(RULESETS))
def load_maps(version: str = DEFAULT_RULESET) -> Maps:
    """The maps of one ruleset version, validated; cached so that every caller shares one copy.

    Raises ``ChoiceError`` for an unknown version, ``MapError`` for a malformed file.
    """
    check_choice(version, tuple(RULESETS), "ruleset")
    name = RULESETS[version]
    ruleset = _validate(Ruleset, name, read_map(name))
    if ruleset.version != version:
        raise MapError(f"fhir_maps/{name}: version is {ruleset.version!r}, expected {version!r}")
    terminology = _validate(Terminology, TERMINOLOGY_FILE, read_map(TERMINOLOGY_FILE))
    _check_sources(ruleset, name)
    _check_valueset_ids(ruleset, name)
    valuesets = {v.id: _valueset(v.id, v.url, v.file) for v in ruleset.valuesets}
    return Maps(ruleset, terminology, valuesets)


def load_ruleset(version: str = DEFAULT_RULESET) -> tuple[Ruleset, Terminology]:
    """The ruleset and terminology of ``version`` (default: the current ruleset)."""
    maps = load_maps(version)
    return maps.ruleset, maps.terminology


def observation_search_codes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """LOINC codes the FHIR searches ask for: (blood pressure, the others), every ruleset's.

    The fetch stage asks for the union so that a deployment switching ruleset reads all it needs.
    """
    bp: dict[str, None] = {}
    other: dict[str, None] = {}
    for version in RULESETS:
        codes = load_maps(version).ruleset.observations
        bp.update(dict.fromkeys(codes.blood_pressure()))
        other.update(dict.fromkeys(codes.others()))
    return tuple(bp), tuple(o for o in other if o not in bp)
