"""A stand-in FHIR server for ``container-check.sh``'s drain check (standard library only).

``python3 held_fhir.py PORT GATE_DIR`` answers ``GET /fhir/.well-known/smart-configuration``,
but only once the file ``GATE_DIR/release`` exists; on arrival it writes ``GATE_DIR/arrived``.
So a request to the service that needs this answer is held in flight for as long as the check
wants: SIGTERM is sent to the service meanwhile, and the answer must still come back.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PORT, GATE = int(sys.argv[1]), Path(sys.argv[2])
BASE = f"http://127.0.0.1:{PORT}"


class Held(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/fhir/.well-known/smart-configuration":
            self.send_error(404)
            return
        (GATE / "arrived").touch()
        for _ in range(600):  # at most a minute, then answer anyway
            if (GATE / "release").exists():
                break
            time.sleep(0.1)
        body = json.dumps({"authorization_endpoint": f"{BASE}/authorize",
                           "token_endpoint": f"{BASE}/token",
                           "capabilities": ["launch-ehr", "client-confidential-symmetric"],
                           "code_challenge_methods_supported": ["S256"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Held).serve_forever()
