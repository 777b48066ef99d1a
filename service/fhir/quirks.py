"""What FHIR servers do that the specification does not lead one to expect, and how we cope.

The one documented home for server quirks: each entry says what a server does, where it was seen,
and what the code does about it. Code that copes with a quirk takes the name from here, so that
``grep`` finds every workaround, and a new EHR's oddity is one entry here plus its handling.

========================  ====================================================  ==================
quirk                     what we do                                            handled in
========================  ====================================================  ==================
export poll wait          HAPI answers every ``$export`` status poll with       fhir.bulk
                          ``Retry-After: 120`` whatever the job's size: the
                          wait is capped (``KETAMINE_BULK_POLL_MAX_SECONDS``).
group export types        HAPI refuses ``Medication`` in a *Group* export       fhir.bulk,
                          (HAPI-0512: not in the patient compartment): group    population
                          exports ask for :data:`GROUP_EXPORT_EXCLUDES` less,
                          referenced Medications are read by ``_id``.
large statement           HAPI's full CapabilityStatement is 1.5 MB of JSON:    fhir.bulk
                          the export check reads :data:`SUMMARY_STATEMENT`.
no export                 A server without ``$export`` answers the kick-off     fhir.bulk
                          with one of :data:`NO_EXPORT_STATUSES`: the run
                          falls back to paging ``Patient``.
unusable statement        ``/metadata`` missing or malformed: standard search   fhir.client
                          is assumed (:data:`STATEMENT_FAILURES`).
sparse statement          A type listed with ``search-type`` but no             fhir.record
                          ``searchParam`` entries (seen in vendor statements):
                          the standard parameters are tried, not refused.
type not offered          A usable statement that does not list a screened      fhir.record,
                          type (MedicationStatement: US Core 4+ dropped it)     fhir.client,
                          is not searched; the screen names it: a note where    screening.rules
                          an offered type carries the same data
                          (``info-data-partly-offered``), missing data where
                          none does (``md-data-not-offered``).
refused parameter         A search answered 400 / 422 (a parameter the server   fhir.record,
                          does not take, whatever its statement says) is sent   fhir.client
                          again relaxed one step at a time: without
                          ``_include``, ``intent``, ``date``, then by
                          ``subject``. Any other error fails the read.
refused next link         A ``next`` link answered 4xx (HAPI's paging cursor    fhir.paging,
                          expires with its search cache): the search starts     fhir.client
                          again once from its first page, then fails with
                          ``PagingRefused``; pages read so far never reach
                          the rules alone.
US Core intent            US Core's required MedicationRequest search is        fhir.record
                          ``patient`` + ``intent``: every intent code is asked
                          for unless the statement lists parameters without
                          ``intent``.
patient search param      A server that lists ``subject`` but not ``patient``   fhir.record
                          for a type is searched by ``subject``; one listing
                          neither gets ``patient`` (then ``subject``).
no ``_include``           Not listed in ``searchInclude``: the Medications are  fhir.record,
                          read by ``_id`` search, or a batch of reads where     fhir.client
                          ``_id`` is not listed either.
no ``code`` / ``date``    Not listed for Observation: all of the patient's      fhir.record
                          Observations are read and filtered here; the BP
                          search is unbounded (the rules apply the window).
prefetch has no dates     CDS prefetch tokens are context fields only: the      fhir.prefetch
                          BP window is asked as the most recent readings.
========================  ====================================================  ==================
"""

from __future__ import annotations

from service.errors import FhirNotFound, FhirProtocolError, FhirRejected

__all__ = [
    "GROUP_EXPORT_EXCLUDES",
    "NO_EXPORT_STATUSES",
    "STATEMENT_FAILURES",
    "SUMMARY_STATEMENT",
    "capped_poll_wait",
]

GROUP_EXPORT_EXCLUDES = frozenset({"Medication"})
"""Types a Group export may not ask for (HAPI-0512: outside the patient compartment)."""
SUMMARY_STATEMENT = (("_summary", "true"),)
"""The summary CapabilityStatement still lists operations, at a fraction of the size."""
NO_EXPORT_STATUSES = frozenset({404, 405, 501})
"""Kick-off answers that mean "no $export here" (a 404 on a Group may also mean no such Group:
the fallback's Group read then says so)."""
STATEMENT_FAILURES = (FhirNotFound, FhirRejected, FhirProtocolError)
"""``/metadata`` answers after which standard search is assumed rather than failing the read."""


def capped_poll_wait(asked: float | None, backoff: float, cap: float) -> float:
    """Seconds until the next export status poll: the server's ``Retry-After`` (else our
    backoff), never more than ``cap``.

    >>> capped_poll_wait(120.0, 0.5, 5.0), capped_poll_wait(None, 0.5, 5.0)
    (5.0, 0.5)
    """
    return min(asked if asked is not None else backoff, cap)
