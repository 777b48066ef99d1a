"""FHIR ``dateTime`` values as read back from a server (https://hl7.org/fhir/R4/datatypes.html
#dateTime): one parse for every course record."""

from __future__ import annotations

from datetime import datetime

__all__ = ["parse_when"]


def parse_when(raw: object) -> datetime | None:
    """A FHIR dateTime with a zone (a date alone is read as midnight UTC); None otherwise.

    >>> parse_when("2026-06-15T09:00:00Z").isoformat()
    '2026-06-15T09:00:00+00:00'
    >>> parse_when("2026-06-15").isoformat()
    '2026-06-15T00:00:00+00:00'
    >>> parse_when("2026-06-15T09:00:00") is None  # no zone: not a usable instant
    True
    """
    if not isinstance(raw, str) or not raw:
        return None
    text = raw.replace("Z", "+00:00")
    if len(text) == 10:
        text += "T00:00:00+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else None
