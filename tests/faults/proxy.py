"""A fault-injecting HTTP/1.1 proxy for tests: it sits in front of the real HAPI sandbox.

Every client connection carries one request (the proxy answers ``Connection: close``). Each
request is matched against :attr:`FaultProxy.rules` in order; a rule with ``times`` left applies
its action, else the request passes through untouched. Because the faults sit in front of a real
server, what the server stored afterwards is real, and the tests count it.

Actions:

``pass``            forward, relay the answer
``delay``           wait until the client gives up (closes), at most ``seconds``, then forward
                    and relay (the EHR is slow)
``delay-answer``    forward (the server does the work), wait until the client gives up, at most
                    ``seconds``, then relay

The delays end when the client closes the connection, not after a fixed sleep: the answer is late
by exactly as much as the client's timeout, whatever the machine's load.
``status``          answer ``status`` / ``headers`` / ``body`` without forwarding
``reset``           drop the connection with a TCP RST, nothing forwarded
``reset-after``     forward the whole request, read the answer, then RST instead of relaying
``cut-request``     forward the head and half the body, then RST both sides
``hold``            forward the head and half the body, wait for :meth:`release`, then send the
                    rest (if the server is gone by then: RST)
``garble``          forward, then answer 200 with malformed JSON instead of the real body
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Rule:
    action: str
    method: str | None = None
    path_contains: str = ""
    times: int | None = 1
    """How many requests it applies to; ``None`` for all."""
    seconds: float = 0.0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def matches(self, method: str, target: str) -> bool:
        return ((self.times is None or self.times > 0)
                and (self.method is None or self.method == method)
                and self.path_contains in target)


def _rst(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees 'connection reset by peer'."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_request(sock: socket.socket) -> tuple[bytes, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head, body


def _until_closed(sock: socket.socket, cap: float) -> None:
    """Block until the peer closes ``sock`` (it sent its whole request already), or ``cap`` s."""
    sock.settimeout(cap)
    with contextlib.suppress(OSError):
        while sock.recv(65536):
            pass


def _with_close(head: bytes) -> bytes:
    lines = [line for line in head.split(b"\r\n")
             if line.split(b":")[0].strip().lower() not in (b"connection", b"keep-alive")]
    return b"\r\n".join([*lines, b"Connection: close"])


class FaultProxy:
    """``FaultProxy(upstream_base).start()``; ``.base_url`` is the FHIR base to give the client."""

    def __init__(self, upstream_base: str) -> None:
        parts = urlsplit(upstream_base)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.path = parts.path
        self.rules: list[Rule] = []
        self.seen: list[tuple[str, str, str]] = []
        """(method, target, action) of every request."""
        self.holding = threading.Event()
        self._release = threading.Event()
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}{self.path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def add(self, action: str, **options: object) -> Rule:
        rule = Rule(action, **options)  # type: ignore[arg-type]
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.seen.clear()
        self.holding.clear()
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    def count(self, method: str, action: str | None = None) -> int:
        return sum(1 for m, _, a in self.seen if m == method and (action is None or a == action))

    # -- one connection ----------------------------------------------------------------------

    def _pick(self, method: str, target: str) -> Rule:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, target):
                    if rule.times is not None:
                        rule.times -= 1
                    self.seen.append((method, target, rule.action))
                    return rule
            self.seen.append((method, target, "pass"))
            return Rule("pass", times=None)

    def _handle(self, client: socket.socket) -> None:
        request = _read_request(client)
        if request is None:
            client.close()
            return
        head, body = request
        method, target = head.split(b" ", 2)[:2]
        rule = self._pick(method.decode(), target.decode())
        action = rule.action
        if action == "reset":
            _rst(client)
            return
        if action == "status":
            reason = b"Injected"
            headers = b"".join(f"{k}: {v}\r\n".encode() for k, v in rule.headers.items())
            client.sendall(b"HTTP/1.1 %d %s\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n"
                           % (rule.status, reason, headers, len(rule.body)) + rule.body)
            client.close()
            return
        if action == "delay":
            _until_closed(client, rule.seconds)
        raw = _with_close(head) + b"\r\n\r\n"
        try:
            upstream = socket.create_connection(self.upstream, timeout=120)
        except OSError:
            _rst(client)  # the server is gone: the client sees a reset
            return
        try:
            if action in ("cut-request", "hold"):
                upstream.sendall(raw + body[: len(body) // 2])
                if action == "cut-request":
                    _rst(upstream)
                    _rst(client)
                    return
                self.holding.set()
                self._release.wait(timeout=300)
                try:
                    upstream.sendall(body[len(body) // 2:])
                except OSError:
                    _rst(client)
                    return
            else:
                upstream.sendall(raw + body)
            answer = b""
            while chunk := upstream.recv(65536):
                answer += chunk
        except OSError:
            _rst(client)
            return
        finally:
            upstream.close()
        if not answer:
            _rst(client)
            return
        if action == "reset-after":
            _rst(client)
            return
        if action == "delay-answer":
            _until_closed(client, rule.seconds)
        if action == "garble":
            junk = b'{"resourceType": "Bundle", "type": "transaction-response", "entry": [{'
            answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
                      b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(junk) + junk)
        else:
            status_head, _, rest = answer.partition(b"\r\n\r\n")
            answer = _with_close(status_head) + b"\r\n\r\n" + rest
        with contextlib.suppress(OSError):
            client.sendall(answer)
        client.close()
