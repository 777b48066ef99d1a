"""What the EHR holds for the FHIR-path page tests: one patient's records, loaded into the HAPI
sandbox in one transaction, and the EHR's SMART style document, served over HTTPS.

Records are made with :class:`tests.builders.PatientBuilder`; their times are moved to "days ago"
from now because the pages screen as of now, not as of ``builders.AS_OF``.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.render.session import SESSION_SYSTEM
from tests.builders import LOINC, PatientBuilder, concept, iso

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
PAST_SESSION_BP = (("pre-dose", 130, 80), ("40-min", 150, 92), ("discharge", 124, 78))
"""The last treatment session on record: (step, systolic, diastolic), ten days ago."""


@dataclass(frozen=True)
class Seeded:
    """Ids of what :func:`seed_patient` loaded."""

    patient: str
    practitioner: str
    aneurysm: str
    diazepam: str


def _days_ago(days: float) -> str:
    return iso((datetime.now(UTC) - timedelta(days=days)).replace(hour=9, minute=0, second=0,
                                                                   microsecond=0))


def _moved(p: PatientBuilder, ref: str, days: float) -> dict[str, Any]:
    """The resource ``ref`` of ``p``, its effective time set to ``days`` before now."""
    resource = next(r for r in p.resources if f"{r['resourceType']}/{r['id']}" == ref)
    resource["effectiveDateTime"] = _days_ago(days)
    return resource


def patient_records(pid: str) -> tuple[list[dict[str, Any]], Seeded]:
    """A patient with an aortic aneurysm (contraindication), diazepam (interaction), a recent
    clinic BP, three PHQ-9 totals and one past treatment session written by this app."""
    p = PatientBuilder(pid, birth="1970-12-10", normal_vitals=False)
    aneurysm = p.condition("I71.4", "Abdominal aortic aneurysm")
    diazepam = p.medication("3322", "diazepam")
    _moved(p, p.bp(126, 78, rid=f"{pid}-bp-clinic"), 3)
    for step, systolic, diastolic in PAST_SESSION_BP:
        panel = _moved(p, p.bp(systolic, diastolic, rid=f"{pid}-bp-{step}"), 10)
        panel["identifier"] = [{"system": SESSION_SYSTEM,
                                "value": f"Patient/{pid}/session/s-past/{step}/bp"}]
    for n, (days, score) in enumerate(((40, 21), (20, 15), (5, 10))):
        p.add({"resourceType": "Observation", "id": f"{pid}-phq-{n}", "status": "final",
               "code": concept(LOINC, "44261-6", "PHQ-9 total score"), "subject": p.subject,
               "effectiveDateTime": _days_ago(days), "valueInteger": score})
    patient = {**p.patient(), "gender": "female",
               "name": [{"given": ["Ada"], "family": "Lovelace"}],
               "identifier": [{"use": "usual", "type": {"coding": [
                   {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                   "system": "urn:oid:2.16.840.1.113883.19.5", "value": f"MRN-{pid[-6:]}"}]}
    practitioner = {"resourceType": "Practitioner", "id": f"{pid}-dr",
                    "name": [{"given": ["Grace"], "family": "Hopper"}]}
    seeded = Seeded(pid, practitioner["id"], aneurysm, diazepam)
    return [patient, practitioner, *p.resources], seeded


def put_resources(fhir_base_url: str, resources: list[dict[str, Any]]) -> None:
    """PUT ``resources`` in one transaction, in the order given (HAPI wants absolute fullUrls;
    a referenced resource must come before what points at it)."""
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"{fhir_base_url}/{r['resourceType']}/{r['id']}", "resource": r,
         "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in resources]}
    answer = httpx.post(fhir_base_url, json=bundle, headers=FHIR_JSON, timeout=60)
    assert answer.status_code == 200, answer.text


def seed_patient(fhir_base_url: str, pid: str) -> Seeded:
    """Load :func:`patient_records` with one transaction of PUTs."""
    resources, seeded = patient_records(pid)
    put_resources(fhir_base_url, resources)
    return seeded


def count(fhir_base_url: str, kind: str, **params: str) -> int:
    """How many ``kind`` resources match, asked of HAPI directly (search cache bypassed)."""
    answer = httpx.get(f"{fhir_base_url}/{kind}", params={**params, "_summary": "count"},
                       headers={**FHIR_JSON, "Cache-Control": "no-cache"}, timeout=60)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


# -- The EHR's SMART style (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
#    #styling): the app fetches https URLs only, so this serves one over TLS with its own CA. ------

STYLE = {"color_highlight": "#00573d", "font_family_body": "Georgia, serif"}


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "style-cert.pem", folder / "style-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class _StyleHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(STYLE).encode() if self.path == "/style.json" else b""
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return None


class StyleServer:
    """``https://127.0.0.1:<port>/style.json``; trust it by pointing ``SSL_CERT_FILE`` (read by
    httpx) at :attr:`cert_file`."""

    def __init__(self, folder: Path) -> None:
        self.cert_file, key_file = _self_signed(folder)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, key_file)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _StyleHandler)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}/style.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> StyleServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
