"""The records of a Bulk Data export on disk, grouped by patient, so memory stays bounded.

Each NDJSON line goes into a temporary SQLite file: ``patients(id, body)``,
``medications(id, body)`` and ``records(patient, med, body)``, inserted in batches of
:data:`BATCH` rows, with the per-patient index built once the files are in. Reading back yields
one patient's rows (plus the Medications they reference) at a time. SQLite's own page cache is
capped at :data:`SQLITE_CACHE_KIB`; disk use is about the size of the NDJSON.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from typing import Any

from service.fhir.references import MEDICATION_BATCH, medication_ref, patient_ref

__all__ = ["BATCH", "SQLITE_CACHE_KIB", "Spill"]

BATCH = 500
SQLITE_CACHE_KIB = 8192


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
        self._rows: dict[str, list[tuple[str | None, ...]]] = {
            "patients": [], "medications": [], "records": []}
        self.lines = self.bytes = self.unusable = 0
        self._committed = (0, 0, 0)

    def add(self, line: str) -> None:
        """One NDJSON line (a resource). Lines that are not a resource are counted, not kept."""
        self.lines += 1
        self.bytes += len(line) + 1
        try:
            resource = json.loads(line)
        except ValueError:
            resource = None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        rid = resource.get("id") if isinstance(resource, dict) else None
        if not isinstance(resource, dict) or not isinstance(kind, str) or not isinstance(rid, str):
            self.unusable += 1
            return
        if kind == "Patient":
            self._put("patients", rid, line)
        elif kind == "Medication":
            self._put("medications", rid, line)
        else:
            patient = _patient_of(resource)
            if patient is None:
                self.unusable += 1
                return
            self._put("records", patient, _medication_of(resource), line)

    def _put(self, table: str, *row: str | None) -> None:
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
        self._committed = (self.lines, self.bytes, self.unusable)

    def rollback(self) -> None:
        """Forget what was added since the last commit (a download that failed half-way)."""
        for rows in self._rows.values():
            rows.clear()
        self._db.rollback()
        self.lines, self.bytes, self.unusable = self._committed

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

    def patients(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(patient id, a collection Bundle of that patient's records), in id order."""
        for pid, body in self._db.execute("SELECT id, body FROM patients ORDER BY id"):
            rows = self._db.execute("SELECT body, med FROM records WHERE patient = ?",
                                    (pid,)).fetchall()
            meds = sorted({med for _, med in rows if med})
            found = self._db.execute(
                f"SELECT body FROM medications WHERE id IN ({','.join('?' * len(meds))})",  # noqa: S608
                meds).fetchall() if meds else []
            entries = [json.loads(text) for text, *_ in [(body,), *rows, *found]]
            yield pid, {"resourceType": "Bundle", "type": "collection",
                        "entry": [{"resource": r} for r in entries]}

    def close(self) -> None:
        self._db.close()
        os.unlink(self.path)


def _patient_of(resource: dict[str, Any]) -> str | None:
    ref = patient_ref(resource)
    return ref.id if ref is not None and ref.type == "Patient" else None


def _medication_of(resource: dict[str, Any]) -> str | None:
    ref = medication_ref(resource)
    return ref.id if ref is not None and ref.type == "Medication" else None
