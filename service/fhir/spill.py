"""The records of a Bulk Data export on disk, grouped by patient, so memory stays bounded.

Each NDJSON line goes into a temporary SQLite file: ``patients(id, body)``,
``medications(id, body)`` and ``records(patient, med, body)``, inserted in batches of
:data:`BATCH` rows, with the per-patient index built once the files are in. Reading back yields
one patient's rows (plus the Medications they reference) at a time, already joined by SQLite into
one Bundle's JSON text, so that it is decoded once (:func:`service.fhir.bundle.parse_bundle`).
SQLite's own page cache is capped at :data:`SQLITE_CACHE_KIB`; disk use is about the size of the
NDJSON.

A line is not decoded whole on the way in: only its header (type, id, the references to its
patient and Medication, an Observation's code) is read, by msgspec, skipping the rest. An
Observation whose code no rule reads (a LOINC code of
:data:`service.fhir.record.WANTED_CODES`) is counted and dropped there, as the searches of a single
screening never fetch it (most of an EHR's Observations: 73% of a Synthea-shaped patient's).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Any

import msgspec

from service.fhir.record import wanted_observation
from service.fhir.references import MEDICATION_BATCH, medication_ref, patient_ref

__all__ = ["BATCH", "SQLITE_CACHE_KIB", "Spill"]

BATCH = 500
SQLITE_CACHE_KIB = 8192


class _Reference(msgspec.Struct, gc=False):
    reference: Any = None


class _Coding(msgspec.Struct, gc=False):
    system: Any = None
    code: Any = None


class _Code(msgspec.Struct, gc=False):
    coding: list[_Coding] | None = None


class _Header(msgspec.Struct, gc=False):
    """What the spill reads of a line; the other elements are skipped unread."""

    resourceType: Any = None
    id: Any = None
    subject: _Reference | None = None
    patient: _Reference | None = None
    medicationReference: _Reference | None = None
    code: msgspec.Raw = msgspec.Raw()
    """Left as JSON; read as ``_Code`` for an Observation only (another type's code may have
    any shape)."""

    def get_resource_type(self) -> str:
        return str(self.resourceType)


_HEADER = msgspec.json.Decoder(_Header)
_CODE = msgspec.json.Decoder(_Code | None)


def _header(line: str | bytes) -> _Header | None:
    """The line's header; None when it is not a JSON object. An element read here that has the
    wrong shape reads as absent (the line is then kept, or counted unusable, as before)."""
    try:
        return _HEADER.decode(line)
    except msgspec.ValidationError:
        pass
    except (msgspec.DecodeError, RecursionError):
        return None
    try:
        data = msgspec.json.decode(line)
    except (msgspec.DecodeError, RecursionError):  # pragma: no cover - decoded above
        return None
    if not isinstance(data, dict):
        return None
    head = _Header(data.get("resourceType"), data.get("id"))
    if "code" in data:
        head.code = msgspec.Raw(msgspec.json.encode(data["code"]))
    for name in ("subject", "patient", "medicationReference"):
        value = data.get(name)
        if isinstance(value, dict):
            setattr(head, name, _Reference(value.get("reference")))
    return head


def _unread_observation(head: _Header) -> bool:
    """An Observation whose code can be read and is none the rules read."""
    if head.resourceType != "Observation" or not len(head.code):
        return False
    try:
        code = _CODE.decode(head.code)
    except msgspec.ValidationError:
        return False  # malformed: kept, so that reading it names the problem
    return code is not None and not wanted_observation(code)


class Spill:
    """The export's records on disk, grouped by patient (see the module docstring)."""

    def __init__(self, directory: str | None = None) -> None:
        handle, self.path = tempfile.mkstemp(prefix="ketamine-export-", suffix=".sqlite",
                                             dir=directory)
        os.close(handle)
        self._db = sqlite3.connect(self.path)
        self._db.executescript(f"""
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
            PRAGMA cache_size = -{SQLITE_CACHE_KIB}; PRAGMA temp_store = FILE;
            CREATE TABLE patients (id TEXT PRIMARY KEY, body TEXT NOT NULL);
            CREATE TABLE medications (id TEXT PRIMARY KEY, body TEXT NOT NULL);
            CREATE TABLE records (patient TEXT NOT NULL, med TEXT, body TEXT NOT NULL);
        """)
        self._rows: dict[str, list[tuple[str | bytes | None, ...]]] = {
            "patients": [], "medications": [], "records": []}
        self.lines = self.bytes = self.unusable = self.skipped = 0
        """``skipped``: Observations dropped because no rule reads their code."""
        self._committed = (0, 0, 0, 0)

    def add(self, line: str | bytes) -> None:
        """One NDJSON line (a resource). Lines that are not a resource are counted, not kept."""
        self.lines += 1
        self.bytes += len(line) + 1
        head = _header(line)
        kind = head.resourceType if head is not None else None
        rid = head.id if head is not None else None
        if head is None or not isinstance(kind, str) or not isinstance(rid, str):
            self.unusable += 1
            return
        if kind == "Patient":
            self._put("patients", rid, line)
        elif kind == "Medication":
            self._put("medications", rid, line)
        elif _unread_observation(head):
            self.skipped += 1
        else:
            patient = _patient_of(head)
            if patient is None:
                self.unusable += 1
                return
            self._put("records", patient, _medication_of(head), line)

    def _put(self, table: str, *row: str | bytes | None) -> None:
        rows = self._rows[table]
        rows.append(row)
        if len(rows) >= BATCH:
            self._flush(table)

    def _flush(self, table: str) -> None:
        rows = self._rows[table]
        if rows:
            marks = ",".join("?" * len(rows[0]))
            verb = "INSERT" if table == "records" else "INSERT OR REPLACE"
            self._db.executemany(f"{verb} INTO {table} VALUES ({marks})", rows)
            rows.clear()

    def commit(self) -> None:
        for table in self._rows:
            self._flush(table)
        self._db.commit()
        self._committed = (self.lines, self.bytes, self.unusable, self.skipped)

    def rollback(self) -> None:
        """Forget what was added since the last commit (a download that failed half-way)."""
        for rows in self._rows.values():
            rows.clear()
        self._db.rollback()
        self.lines, self.bytes, self.unusable, self.skipped = self._committed

    def finish(self) -> None:
        """Index records by patient, once every file is in (cheaper than indexing per insert)."""
        self.commit()
        self._db.execute("CREATE INDEX IF NOT EXISTS records_patient ON records (patient)")
        self._db.commit()

    def patient_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM patients").fetchone()[0])

    def unattached(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM records WHERE patient NOT IN "
                                    "(SELECT id FROM patients)").fetchone()[0])

    def missing_medications(self) -> Iterator[list[str]]:
        """Referenced Medications the export did not bring, MEDICATION_BATCH ids at a time.

        The set difference is SQL's so that it stays on disk; the references were read with
        :func:`service.fhir.references.medication_ref` as the lines came in."""
        self._db.execute("DROP TABLE IF EXISTS temp.wanted")
        self._db.execute("CREATE TEMP TABLE wanted AS SELECT DISTINCT med FROM records WHERE med "
                         "IS NOT NULL AND med NOT IN (SELECT id FROM medications)")
        cursor = self._db.execute("SELECT med FROM temp.wanted")
        while chunk := cursor.fetchmany(MEDICATION_BATCH):
            yield [row[0] for row in chunk]

    def patients(self) -> Iterator[tuple[str, str]]:
        """(patient id, a collection Bundle's JSON text: the Patient, its records in the order
        they came, the Medications they reference), in id order."""
        for (pid,) in self._db.execute("SELECT id FROM patients ORDER BY id"):
            (entries,) = self._db.execute(_ONE_PATIENT, (pid,)).fetchone()
            yield pid, f'{{"resourceType":"Bundle","type":"collection","entry":[{entries}]}}'

    def close(self) -> None:
        self._db.close()
        os.unlink(self.path)


_ONE_PATIENT = """
    SELECT group_concat('{"resource":' || body || '}', ',') FROM (
        SELECT body FROM patients WHERE id = ?1
        UNION ALL SELECT body FROM records WHERE patient = ?1
        UNION ALL SELECT body FROM medications
                  WHERE id IN (SELECT med FROM records WHERE patient = ?1))
"""
"""One patient's entries, joined in SQLite (one query, one string per patient); SQLite feeds a
UNION ALL's parts to the aggregate in order, and each part in rowid (arrival) order."""


def _patient_of(head: _Header) -> str | None:
    ref = patient_ref(head)
    return ref.id if ref is not None and ref.type == "Patient" else None


def _medication_of(head: _Header) -> str | None:
    ref = medication_ref(head)
    return ref.id if ref is not None and ref.type == "Medication" else None
