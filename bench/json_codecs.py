"""Fast JSON: the stdlib against orjson and msgspec on the bodies the service decodes and encodes.

Run: ``.venv/bin/python -m bench.json_codecs`` (also part of ``make bench``). Bodies, all built
here (no server needed):

- decode a FHIR search page: a HAPI-shaped ``searchset`` Bundle of 200 Observations (what
  ``FhirClient.get_json`` decodes per page today with ``httpx.Response.json()``, i.e.
  ``json.loads``);
- decode Bulk NDJSON: 1,000 Observation lines one at a time (``Spill.add`` decodes each line);
- encode our responses: the screening contract of a 500-record patient as FastAPI sends it
  (``ScreeningOut`` validated, then written by pydantic-core), and the write-back
  transaction Bundle as ``FhirClient.transaction`` sends it (``httpx`` ``json=``: ``json.dumps``).

Wall-clock ms, min / median / max of ``ROUNDS`` runs.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgspec
import orjson
import pydantic

from bench.engine import patient as engine_patient
from service.api.routes.screenings import ScreeningOut
from service.fhir.bundle import parse_bundle
from service.fhir.projection import decode_resource
from service.fhir.read_bundle import decode_bundle
from service.fhir.read_model import AnyResource
from service.render.writeback import build_screening_write
from service.screening.engine import screen
from tests.builders import AS_OF

ROUNDS = 50
BASE = "http://127.0.0.1:8080/fhir"


def search_page(records: list[dict[str, Any]]) -> bytes:
    entries = [{"fullUrl": f"{BASE}/Observation/{r['id']}",
                "resource": r | {"meta": {"versionId": "1", "lastUpdated":
                                          "2026-06-15T12:00:00.000+00:00",
                                          "source": "#a1b2c3d4e5f6"}},
                "search": {"mode": "match"}} for r in records]
    return json.dumps({"resourceType": "Bundle", "id": "page", "meta": {
        "lastUpdated": "2026-06-15T12:00:00.000+00:00"}, "type": "searchset",
        "link": [{"relation": "self", "url": f"{BASE}/Observation?patient=p&_count=200"},
                 {"relation": "next", "url": f"{BASE}?_getpages=abc&_getpagesoffset=200"}],
        "entry": entries}).encode()


def _findings() -> list[dict[str, Any]]:
    """Records that make the contract carry findings (a realistic response, not an empty one)."""
    from tests.builders import PatientBuilder

    p = PatientBuilder("bench500", normal_vitals=False)
    p.condition("I71.4", "Abdominal aortic aneurysm")
    p.condition("F20.9", "Schizophrenia")
    p.medication("197901", "lorazepam 1 MG Oral Tablet")
    p.medication(text="oxycodone 5 mg")
    p.allergy(text="ketamine")
    return p.resources


def timed(fn: Callable[[], object]) -> list[float]:
    fn()
    samples = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return samples


def row(name: str, fn: Callable[[], object], base: float | None) -> float:
    samples = timed(fn)
    median = statistics.median(samples)
    ratio = f"{median / base:>8.2f}x" if base else f"{'1.00x':>9}"
    print(f"  {name:<48} {min(samples) * 1e3:>8.3f} {median * 1e3:>8.3f} "
          f"{max(samples) * 1e3:>8.3f} {ratio}")
    return median


_OUT = pydantic.TypeAdapter(ScreeningOut)


def fastapi_today(contract: dict[str, Any]) -> bytes:
    """What FastAPI does for ``response_model=ScreeningOut`` (its fast path since 0.13x): the
    model validates the dict, then pydantic-core writes the JSON bytes."""
    return _OUT.dump_json(_OUT.validate_python(contract), exclude_none=True)


def main() -> None:
    bundle = engine_patient(500, seed=500)
    observations = [e["resource"] for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "Observation"][:200]
    page = search_page(observations)
    lines = [json.dumps(r) for r in observations] * 5  # 1,000 NDJSON lines
    busy = engine_patient(500, seed=500)
    busy["entry"] += [{"resource": r} for r in _findings()]
    result = screen(parse_bundle(busy, "bench"), AS_OF)
    contract = result.as_contract()
    transaction = build_screening_write(result).bundle().model_dump(mode="json",
                                                                     exclude_none=True)
    print(f"JSON codecs: wall ms, {ROUNDS} rounds (min / median / max, ratio to the stdlib row)")
    header = f"  {'body and codec':<48} {'min':>8} {'median':>8} {'max':>8} {'ratio':>9}"

    print(f"\nDecode a search page: 200 Observations, {len(page) / 1024:.0f} kB")
    print(header)
    base = row("json.loads (today: httpx Response.json())", lambda: json.loads(page), None)
    row("orjson.loads", lambda: orjson.loads(page), base)
    row("msgspec.json.decode (untyped)", lambda: msgspec.json.decode(page), base)
    row("decode_bundle (typed, checked: the projection)", lambda: decode_bundle(page, "p"), base)

    size = sum(map(len, lines)) / 1024
    print(f"\nDecode Bulk NDJSON: {len(lines)} lines one by one, {size:.0f} kB")
    print(header)
    base = row("json.loads per line (today: Spill.add)", lambda: [json.loads(s) for s in lines],
               None)
    row("orjson.loads per line", lambda: [orjson.loads(s) for s in lines], base)
    row("msgspec.json.decode per line", lambda: [msgspec.json.decode(s) for s in lines], base)
    row("decode_resource per line (typed, checked)", lambda: [decode_resource(s) for s in lines],
        base)
    joined = ("[" + ",".join(lines) + "]").encode()
    typed = msgspec.json.Decoder(list[AnyResource])
    row("the lines joined into one array, typed decode", lambda: typed.decode(joined), base)

    encoded = fastapi_today(contract)
    print(f"\nEncode the screening response ({len(encoded) / 1024:.1f} kB, 500-record patient)")
    print(header)
    base = row("FastAPI today: validate + pydantic dump_json", lambda: fastapi_today(contract),
               None)
    row("json.dumps of the contract dict only", lambda: json.dumps(contract), base)
    row("orjson.dumps of the contract dict", lambda: orjson.dumps(contract), base)
    row("msgspec.json.encode of the contract dict", lambda: msgspec.json.encode(contract), base)

    size = len(json.dumps(transaction)) / 1024
    print(f"\nEncode the write-back transaction Bundle ({size:.1f} kB)")
    print(header)
    base = row("json.dumps (today: httpx json=)", lambda: json.dumps(transaction), None)
    row("orjson.dumps", lambda: orjson.dumps(transaction), base)
    row("msgspec.json.encode", lambda: msgspec.json.encode(transaction), base)


if __name__ == "__main__":
    main()
