"""How to read inbound FHIR: the read-side projection's candidates, measured side by side.

Run: ``.venv/bin/python -m bench.projection`` (also part of ``make bench``). Each candidate reads
the same Bundle bytes into objects holding the elements screening reads, with the same checks
(types, FHIR date/dateTime/instant/code/id grammar, finite numbers), or (the first rows) only
decodes JSON (codes are checked in the Structs' ``__post_init__``, which the walk builds too;
the pydantic copy checks their length only):

- ``json.loads`` / ``orjson.loads`` / ``msgspec`` untyped: JSON to dicts, no checks (the floor);
- **msgspec Structs** (``service.fhir.read_bundle.decode_bundle``): bytes straight into the read
  model, checks in C; the chosen one;
- msgspec from dicts: ``json.loads`` then ``decode_resource(dict)`` per entry (a body someone
  decoded already);
- orjson + typed walk: ``orjson.loads`` then a Python walk that checks each element and builds the
  same Structs (the walk is compiled once per class from the read model's own type info);
- slim pydantic: pydantic v2 models generated from the same read model (same fields, same
  patterns), ``model_validate_json`` on the bytes with a discriminated union on resourceType;
- fhir.resources: what screening did before the projection (every element validated;
  tests/fhir/oracle.py).

Times are wall-clock per Bundle (min / median / max of ``ROUNDS`` runs, one core) and per record
(median / records).
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

import msgspec
import msgspec.inspect as mi
import orjson
import pydantic

from bench.engine import patient as engine_patient
from service.fhir.projection import decode_resource
from service.fhir.read_bundle import decode_bundle
from service.fhir.read_model import RESOURCE_TYPES
from tests.fhir import oracle
from tests.synthea_like import synthea_patient

ROUNDS = 40


# -- orjson + a typed walk -------------------------------------------------------------------------

Check = Callable[[Any, str], Any]


class WalkError(ValueError):
    pass


def _walker(info: Any) -> Check:
    """A checker for one msgspec type: returns the value (Structs built), or raises WalkError."""
    if isinstance(info, mi.UnionType):
        inner = [t for t in info.types if not isinstance(t, mi.NoneType)]
        check = _walker(inner[0])
        return lambda v, where: None if v is None else check(v, where)
    if isinstance(info, mi.StrType):
        pattern = re.compile(info.pattern) if info.pattern else None
        least = info.min_length or 0

        def text(v: Any, where: str) -> Any:
            if type(v) is not str or len(v) < least or (pattern and not pattern.search(v)):
                raise WalkError(where)
            return v
        return text
    if isinstance(info, mi.FloatType):
        def number(v: Any, where: str) -> Any:
            if type(v) not in (int, float) or v != v or v in (float("inf"), float("-inf")):
                raise WalkError(where)
            return float(v)
        return number
    if isinstance(info, mi.IntType):
        low = info.ge if info.ge is not None else -(2**63)

        def integer(v: Any, where: str) -> Any:
            if type(v) is not int or v < low:
                raise WalkError(where)
            return v
        return integer
    if isinstance(info, mi.BoolType):
        def boolean(v: Any, where: str) -> Any:
            if type(v) is not bool:
                raise WalkError(where)
            return v
        return boolean
    if isinstance(info, mi.ListType):
        item = _walker(info.item_type)

        def many(v: Any, where: str) -> Any:
            if type(v) is not list:
                raise WalkError(where)
            return [item(x, where) for x in v]
        return many
    if isinstance(info, mi.VarTupleType):
        member = _walker(info.item_type)

        def frozen(v: Any, where: str) -> Any:
            if type(v) is not list:
                raise WalkError(where)
            return tuple(member(x, where) for x in v)
        return frozen
    if isinstance(info, mi.StructType):
        return _struct_walker(info)
    return lambda v, where: v  # str tag fields (resourceType) and the like


def _struct_walker(info: mi.StructType) -> Check:
    cls = info.cls
    fields: list[tuple[str, Check]] = []
    for f in info.fields:
        fields.append((f.name, (lambda: None) and _walker(f.type)))
    tag_field = info.tag_field

    def struct(v: Any, where: str) -> Any:
        if type(v) is not dict:
            raise WalkError(where)
        values = {}
        for name, check in fields:
            value = v.get(name)
            if value is not None:
                values[name] = check(value, name)
        if tag_field:
            values.pop(tag_field, None)
        return cls(**values)
    return struct


WALKERS = {name: _struct_walker(mi.type_info(cls)) for name, cls in RESOURCE_TYPES.items()}


def orjson_walk(body: bytes) -> list[Any]:
    out = []
    for entry in orjson.loads(body)["entry"]:
        resource = entry["resource"]
        walk = WALKERS.get(resource.get("resourceType"))
        if walk is not None:
            try:
                out.append(walk(resource, ""))
            except WalkError:
                out.append(None)
    return out


# -- slim pydantic, generated from the same read model ---------------------------------------------


def _pydantic_type(info: Any, made: dict[type, Any]) -> Any:
    if isinstance(info, mi.UnionType):
        inner = [t for t in info.types if not isinstance(t, mi.NoneType)]
        return _pydantic_type(inner[0], made) | None
    if isinstance(info, mi.StrType):
        # pydantic-core's Rust regex has no \Z; its $ already means the very end.
        pattern = info.pattern.replace(r"\Z", "$") if info.pattern else None
        return Annotated[str, pydantic.StringConstraints(strict=True, pattern=pattern,
                                                         min_length=info.min_length)]
    if isinstance(info, mi.FloatType):
        return Annotated[float, pydantic.Field(strict=True, allow_inf_nan=False)]
    if isinstance(info, mi.IntType):
        return Annotated[int, pydantic.Field(strict=True, ge=info.ge)]
    if isinstance(info, mi.BoolType):
        return Annotated[bool, pydantic.Field(strict=True)]
    if isinstance(info, mi.ListType):
        return list[_pydantic_type(info.item_type, made)]  # type: ignore[misc]
    if isinstance(info, mi.VarTupleType):
        return tuple[_pydantic_type(info.item_type, made), ...]  # type: ignore[misc]
    if isinstance(info, mi.StructType):
        return _pydantic_model(info, made)
    return str


def _pydantic_model(info: mi.StructType, made: dict[type, Any]) -> Any:
    if info.cls in made:
        return made[info.cls]
    fields: dict[str, Any] = {f.name: (_pydantic_type(f.type, made), None) for f in info.fields}
    if info.tag_field:
        fields[info.tag_field] = (Literal[info.tag], ...)
    model = pydantic.create_model(f"Slim{info.cls.__name__}", **fields)  # type: ignore[call-overload]
    made[info.cls] = model
    return model


def slim_pydantic() -> pydantic.TypeAdapter[Any]:
    made: dict[type, Any] = {}
    models = [_pydantic_model(mi.type_info(cls), made) for cls in RESOURCE_TYPES.values()]
    resource = Annotated[Union[tuple(models)], pydantic.Field(discriminator="resourceType")]  # noqa: UP007
    entry = pydantic.create_model("SlimEntry", resource=(resource, ...), fullUrl=(str | None, None))
    bundle = pydantic.create_model("SlimBundle", resourceType=(Literal["Bundle"], ...),
                                   entry=(list[entry], []))  # type: ignore[valid-type]
    return pydantic.TypeAdapter(bundle)


# -- the run ---------------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> list[float]:
    fn()
    samples = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return samples


def candidates(body: bytes) -> list[tuple[str, Callable[[], object]]]:
    adapter = slim_pydantic()
    return [
        ("json.loads (floor, no checks)", lambda: json.loads(body)),
        ("orjson.loads (no checks)", lambda: orjson.loads(body)),
        ("msgspec untyped (no checks)", lambda: msgspec.json.decode(body)),
        ("msgspec Structs: decode_bundle *", lambda: decode_bundle(body, "bench")),
        ("msgspec from dicts", lambda: [decode_resource(e["resource"])
                                        for e in json.loads(body)["entry"]]),
        ("orjson + typed walk", lambda: orjson_walk(body)),
        ("slim pydantic", lambda: adapter.validate_json(body)),
        ("fhir.resources (before)", lambda: oracle.parse_bundle(json.loads(body), "bench")),
    ]


def bundles() -> list[tuple[str, bytes]]:
    synthea = synthea_patient("bench-syn", seed=1, observations=440, conditions=30,
                              medications=29)
    return [
        ("bench.engine patient, 500 records",
         json.dumps(engine_patient(500, seed=500)).encode()),
        ("Synthea-shaped patient, 500 records", json.dumps(
            {"resourceType": "Bundle", "type": "collection",
             "entry": [{"resource": r} for r in synthea]}).encode()),
    ]


def check_same_answers(body: bytes) -> None:
    """Every typed candidate reads the Bundle without refusing an entry, as the projection does."""
    ours = decode_bundle(body, "bench")
    assert not ours.problems
    assert None not in orjson_walk(body)
    walked = orjson_walk(body)
    assert [e.resource for e in ours.entries] == walked, "the walk and the decoder disagree"


def main() -> None:
    print(f"Read-side projection candidates: wall ms per Bundle, {ROUNDS} rounds, one core")
    for label, body in bundles():
        check_same_answers(body)
        records = len(json.loads(body)["entry"])
        print(f"\n{label} ({len(body) / 1024:.0f} kB of JSON)")
        header = (f"{'candidate':<34} {'min':>8} {'median':>8} {'max':>8} {'us/record':>10} "
                  f"{'x json.loads':>13}")
        print(header)
        print("-" * len(header))
        floor = 0.0
        for name, fn in candidates(body):
            rounds = ROUNDS if "fhir.resources" not in name else 5
            samples = timed(fn) if rounds == ROUNDS else [timed_once(fn) for _ in range(rounds)]
            median = statistics.median(samples)
            floor = floor or median
            print(f"{name:<34} {min(samples) * 1e3:>8.2f} {median * 1e3:>8.2f} "
                  f"{max(samples) * 1e3:>8.2f} {median / records * 1e6:>10.2f} "
                  f"{median / floor:>12.2f}x")
    print("\n* chosen. Every typed candidate checks the same elements with the same grammar.")


def timed_once(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


if __name__ == "__main__":
    main()
