"""Our CodeSystem files are checked when loaded, as a FHIR server would check them (R4 csd-1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.errors import MapError
from service.fhir import codesystems


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    codesystems.load_codesystems.cache_clear()
    yield
    codesystems.load_codesystems.cache_clear()


def test_every_code_is_defined_once_in_the_shipped_files(fresh_cache: None) -> None:
    loaded = codesystems.load_codesystems()
    assert [Path(str(cs["url"])).name for cs in loaded] == [
        "cds-override-reason", "moaas", "screening", "session"]


def test_a_code_defined_twice_stops_loading(fresh_cache: None, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    system = {"resourceType": "CodeSystem", "url": "http://example.org/cs", "version": "1",
              "description": "test", "status": "active", "content": "complete",
              "concept": [{"code": "a", "display": "A"},
                          {"code": "b", "display": "B",
                           "concept": [{"code": "a", "display": "A2"}]}]}
    (tmp_path / "dup.json").write_text(json.dumps(system), encoding="utf-8")
    monkeypatch.setattr(codesystems, "codesystem_path", tmp_path)
    with pytest.raises(MapError, match=r"^dup\.json: codes defined twice \(csd-1\): a$"):
        codesystems.load_codesystems()
