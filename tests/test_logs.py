"""The JSON log lines (issue 15): their fields, the access line per request by route template,
uvicorn's access records without queries, tracebacks without messages, keyed pseudonyms."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import httpx
import pytest

from service.config import Settings
from service.logs import (
    DEFAULT_PSEUDONYM_KEY,
    pseudonym,
    request_id_var,
    set_pseudonym_key,
    uvicorn_log_config,
)
from service.main import create_app
from tests.logcapture import captured_logs

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(autouse=True)
def _default_key() -> Iterator[None]:
    yield
    set_pseudonym_key(DEFAULT_PSEUDONYM_KEY)


def test_a_line_is_one_json_object_with_time_level_logger_and_request_id() -> None:
    with captured_logs() as logs:
        logging.getLogger("service.example").info("screened %s", "x")
        token = request_id_var.set("req-12345678")
        try:
            logging.getLogger("service.example").warning("in a request")
        finally:
            request_id_var.reset(token)
        logging.getLogger("service.example").debug("below INFO: dropped")
    first, second = logs.lines()
    assert set(first) == {"time", "level", "logger", "message", "request_id"}
    assert ISO_UTC.match(first["time"])
    assert (first["level"], first["logger"], first["message"], first["request_id"]) == (
        "INFO", "service.example", "screened x", "-")
    assert (second["level"], second["request_id"]) == ("WARNING", "req-12345678")


def test_a_traceback_keeps_frames_and_types_but_not_messages() -> None:
    with captured_logs() as logs:
        try:
            try:
                raise KeyError("Jane Zyxw")
            except KeyError as exc:
                raise ValueError("note: patient feels unwell") from exc
        except ValueError:
            logging.getLogger("service.example").exception("failed")
    line = logs.lines()[0]
    assert line["exc_info"].startswith("ValueError at test_logs.py:")
    assert "caused by KeyError at test_logs.py:" in line["exc_info"]
    assert "Jane" not in logs.text and "unwell" not in logs.text


def test_uvicorns_access_records_lose_their_query() -> None:
    config = uvicorn_log_config()
    with captured_logs() as logs:
        logging.config.dictConfig(config | {"handlers": {"json": {
            "class": "logging.StreamHandler", "stream": logs.stream, "formatter": "json",
            "filters": ["context"]}}})
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "10.0.0.1:5000", "GET",
            "/callback?code=SECRETCODE&state=S#frag", "1.1", 303)
    line = logs.lines()[0]
    assert line["message"] == '10.0.0.1:5000 - "GET /callback HTTP/1.1" 303'
    assert "SECRETCODE" not in logs.text and "frag" not in logs.text


def test_httpx_info_lines_are_not_logged() -> None:
    """httpx logs each request's full URL, query included, at INFO."""
    with captured_logs("DEBUG") as logs:
        logging.getLogger("httpx").info("HTTP Request: GET http://x/Observation?patient=p7")
    assert logs.text == ""


async def test_one_access_line_per_request_with_the_route_template() -> None:
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    with captured_logs() as logs:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://testserver") as client:
            found = await client.post("/cds-services/ketamine-order-select", json={},
                                      headers={"X-Request-ID": "rid-abcdef123"})
            missing = await client.get("/no/such/path?patient=secret-p77")
    access = [line for line in logs.lines() if line["logger"] == "service.access"]
    assert [(a["method"], a["route"], a["status"], a["request_id"]) for a in access] == [
        ("POST", "/cds-services/{service_id}", found.status_code, "rid-abcdef123"),
        ("GET", "unmatched", 404, missing.headers["x-request-id"])]
    assert all(isinstance(a["duration_ms"], float) and a["duration_ms"] >= 0 for a in access)
    assert "secret-p77" not in logs.text and "/no/such" not in logs.text


def test_pseudonyms_are_keyed_stable_and_hide_the_id() -> None:
    set_pseudonym_key("key-one-0123456789")
    first = pseudonym("patient-123")
    assert first == pseudonym("patient-123") == pseudonym("Patient/patient-123")
    assert re.fullmatch(r"pt-[0-9a-f]{16}", first) and "123" not in first
    assert pseudonym("patient-124") != first
    set_pseudonym_key("key-two-0123456789")
    assert pseudonym("patient-123") != first  # without the key, no confirming a guess


def test_create_app_takes_the_key_from_the_settings() -> None:
    create_app(Settings(_env_file=None, log_pseudonym_key="k" * 32))  # type: ignore[call-arg]
    set_pseudonym_key("k" * 32)
    expected = pseudonym("p1")
    set_pseudonym_key(DEFAULT_PSEUDONYM_KEY)
    create_app(Settings(_env_file=None, log_pseudonym_key="k" * 32))  # type: ignore[call-arg]
    assert pseudonym("p1") == expected
