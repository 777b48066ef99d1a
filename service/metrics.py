"""Prometheus metrics (``prometheus_client``): what an operator alerts on.

    ketamine_http_requests_total{method,route,status}        requests answered, by route template
    ketamine_http_request_duration_seconds{method,route}     their latency (histogram)
    ketamine_fhir_requests_total{operation,outcome}          upstream FHIR requests, by operation
    ketamine_fhir_request_duration_seconds{operation}        their latency (histogram)
    ketamine_token_refresh_total{kind,outcome}               access tokens obtained or refused
    ketamine_verdicts_total{product,verdict}                 screening verdicts, per product

Labels carry route templates, operation names and enumerations only: never a raw path, a patient
id or any other value, so the series stay few and carry no PHI. The exposition is served on a
port of its own (``KETAMINE_METRICS_PORT``, bound to ``KETAMINE_METRICS_HOST``), never on the
public port, and only when that port is set (:func:`serve_metrics`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    start_http_server,
)

__all__ = [
    "FHIR_DURATION",
    "FHIR_REQUESTS",
    "HTTP_DURATION",
    "HTTP_REQUESTS",
    "TOKEN_REFRESH",
    "VERDICTS",
    "MetricsServer",
    "count_verdicts",
    "fhir_operation",
    "serve_metrics",
    "token_outcome",
]

# The *_created series double the exposition; nobody alerts on them.
disable_created_metrics()  # type: ignore[no-untyped-call]
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

HTTP_REQUESTS = Counter("ketamine_http_requests", "Requests answered, by route template.",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("ketamine_http_request_duration_seconds",
                          "Time to answer a request, by route template.", ["method", "route"],
                          buckets=_LATENCY_BUCKETS)
FHIR_REQUESTS = Counter("ketamine_fhir_requests",
                        "Requests to FHIR servers, by operation and outcome (ok, client-error, "
                        "server-error, timeout, transport).", ["operation", "outcome"])
FHIR_DURATION = Histogram("ketamine_fhir_request_duration_seconds",
                          "Time a FHIR server took to answer, by operation.", ["operation"],
                          buckets=_LATENCY_BUCKETS)
TOKEN_REFRESH = Counter("ketamine_token_refresh",
                        "Access tokens obtained (backend: client credentials; launch: a "
                        "clinician's refresh), by outcome (ok, refused, failed).",
                        ["kind", "outcome"])
VERDICTS = Counter("ketamine_verdicts", "Screening verdicts, per product.",
                   ["product", "verdict"])


def fhir_operation(method: str, base_path: str, path: str) -> str:
    """The FHIR interaction a request is, from its method and its path under the base URL.

    >>> fhir_operation("GET", "/fhir/", "/fhir/Observation")
    'search Observation'
    >>> fhir_operation("GET", "/fhir/", "/fhir/Patient/123")
    'read Patient'
    >>> fhir_operation("POST", "/fhir/", "/fhir/")
    'transaction'
    >>> fhir_operation("GET", "/fhir/", "/fhir")
    'search-page'
    >>> fhir_operation("GET", "/fhir/", "/fhir/$export-poll-status")
    'operation $export-poll-status'
    """
    base = base_path.rstrip("/")
    rest = path[len(base):] if path == base or path.startswith(base + "/") else path
    parts = [p for p in rest.split("/") if p]
    if not parts:
        return "transaction" if method == "POST" else "search-page"
    if parts[0] == "metadata":
        return "capabilities"
    if parts[-1].startswith("$"):
        return f"operation {parts[-1]}"
    kind = parts[0] if parts[0][:1].isupper() else "other"
    if len(parts) == 1:
        return f"{'create' if method == 'POST' else 'search'} {kind}"
    verb = {"GET": "read", "PUT": "update", "DELETE": "delete"}.get(method, method.lower())
    return f"{verb} {kind}"


def token_outcome(kind: str, outcome: str) -> None:
    """Count one token request (``kind`` backend or launch; ``outcome`` ok, refused, failed)."""
    TOKEN_REFRESH.labels(kind, outcome).inc()


def count_verdicts(verdicts: Iterable[tuple[str, str]]) -> None:
    """Count the (product, verdict label) pairs of one screening."""
    for product, verdict in verdicts:
        VERDICTS.labels(product, verdict).inc()


@dataclass(slots=True)
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(host: str, port: int,
                  registry: CollectorRegistry = REGISTRY) -> MetricsServer:
    """``/metrics`` on ``host:port`` in a thread (``port`` 0: any free port)."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread)
