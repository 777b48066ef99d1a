"""Eligibility cases (REFERENCE, Indication): registered into ``CASES`` (filled in below)."""

from __future__ import annotations
