"""FHIR R4 primitive types as msgspec constraints, for the read-side projection.

Each alias is a plain ``str``/``int``/``float``/``bool`` to the type checker and a checked value
to the decoder: https://hl7.org/fhir/R4/datatypes.html#primitive gives the grammar. The checks run
inside msgspec's decoder (compiled regular expressions, bounds), not in Python per value.

Dates are checked against the calendar as well as the grammar (``2024-02-30`` and ``2023-02-29``
are refused, as fhir.resources refuses them), with the leap-year rule written into the pattern.
Values are kept as written: a partial date stays ``"2024-03"``; ``to_datetime`` in the normaliser
reads every form.
"""

from __future__ import annotations

import sys
from typing import Annotated

from msgspec import Meta

__all__ = [
    "CODE_PATTERN",
    "DATETIME_PATTERN",
    "DATE_PATTERN",
    "INSTANT_PATTERN",
    "PATTERN_NAMES",
    "Code",
    "Date",
    "DateTime",
    "Decimal",
    "Id",
    "Instant",
    "Integer",
    "String",
    "UnsignedInt",
    "Uri",
    "check_code",
]

# -- Dates ---------------------------------------------------------------------------------------
_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
"""0001..9999 (the spec's own year pattern)."""
_LEAP_YEAR = r"([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
"""Divisible by 4, and centuries only when divisible by 400 (so 1900 is not, 2000 is)."""
_MONTH = r"(0[1-9]|1[0-2])"
_MONTH_DAY = (r"((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"  # every month has days 1..28
              r"|(0[13-9]|1[0-2])-(29|30)"  # all but February have 29 and 30
              r"|(0[13578]|1[02])-31)")  # the long months have 31
_FULL_DATE = rf"({_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_TIME = (r"T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
         r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))")
"""A time needs a zone (https://hl7.org/fhir/R4/datatypes.html#dateTime); ``:60`` is a leap
second, which the grammar allows."""

# The full forms come first: they are the common ones, and the first alternative tried.
DATE_PATTERN = rf"^({_FULL_DATE}|{_YEAR}(-{_MONTH})?)\Z"
DATETIME_PATTERN = rf"^({_FULL_DATE}({_TIME})?|{_YEAR}(-{_MONTH})?)\Z"
INSTANT_PATTERN = rf"^{_FULL_DATE}{_TIME}\Z"

# -- Strings -------------------------------------------------------------------------------------
# ``\Z``, not ``$``: ``$`` also matches before a trailing newline.
CODE_PATTERN = r"^[^\s]+( [^\s]+)*\Z"
ID_PATTERN = r"^[A-Za-z0-9\-.]{1,64}\Z"

Date = Annotated[str, Meta(pattern=DATE_PATTERN)]
DateTime = Annotated[str, Meta(pattern=DATETIME_PATTERN)]
Instant = Annotated[str, Meta(pattern=INSTANT_PATTERN)]
Code = Annotated[str, Meta(min_length=1)]
"""Checked by :func:`check_code` in the ``__post_init__`` of the class that holds it (see there)."""
Id = Annotated[str, Meta(pattern=ID_PATTERN)]
# string and uri: not empty (https://hl7.org/fhir/R4/json.html: no empty strings). Their
# whitespace rules are not checked: a pattern per string would cost more than the rest of the
# decoding together (measured in bench/projection.py), the spec's own wording for strings is a
# SHOULD, and fhir.resources never checked a uri's form either.
Uri = Annotated[str, Meta(min_length=1)]
String = Annotated[str, Meta(min_length=1)]

# -- Numbers -------------------------------------------------------------------------------------
# A JSON number must be finite; the bounds also refuse NaN and infinities handed over in an
# already-decoded dict (Python's json module reads ``NaN``).
Decimal = Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
Integer = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
UnsignedInt = Annotated[int, Meta(ge=0, le=2**31 - 1)]

PATTERN_NAMES = {
    DATE_PATTERN: "date",
    DATETIME_PATTERN: "dateTime",
    INSTANT_PATTERN: "instant",
    ID_PATTERN: "id",
}
"""Pattern -> FHIR type name, to name what a refused value should have been."""

# -- Codes ---------------------------------------------------------------------------------------
# A code is checked in Python rather than by a pattern in the decoder: a pattern costs a regular
# expression search per value (about 0.3 us: 0.84 ms of the 2.0 ms a 500-record Bundle took to
# decode, bench/projection.py), while the same few codes ("final", LOINC codes, "mm[Hg]") recur
# in every record, so a code checked once passes by a set lookup after.

_CODES_SEEN: set[str] = set()
_CODES_LIMIT = 20_000
"""Codes remembered as valid at most (the set starts again beyond: memory stays bounded)."""


def check_code(value: str | None, element: str) -> None:
    """Raise ``ValueError("element <element>: not a valid code")`` unless ``value`` (when
    given) matches CODE_PATTERN.

    ``value.split() == value.split(" ")`` is that pattern: it holds exactly when the text is
    tokens without whitespace joined by single spaces, no more, no fewer; ``str.split()`` and
    the pattern's ``[^\\s]`` know the same (Unicode) whitespace.
    """
    if value is None or value in _CODES_SEEN:
        return
    if value.split() != value.split(" "):
        raise ValueError(f"element {element}: not a valid code")
    if len(_CODES_SEEN) >= _CODES_LIMIT:
        _CODES_SEEN.clear()
    _CODES_SEEN.add(value)
