"""The fetch stage: everything that talks FHIR to a server or reads FHIR from a file (I/O only).

    client.py        FhirClient: one session (own client or a shared pool), read / search /
                     transaction, public send/stream
    http.py          retries (RetryPolicy, its sleep seam) and FHIR error mapping
    paging.py        search result pages followed to the end, on the server's origin only
    record.py        one patient's record: the searches to run, their answers assembled
    references.py    Ref (every reference form) and SCREENED_TYPES: the one table of what we read
    bundle.py        one patient's records from a Bundle (a file or a request body)
    read_model.py    what screening reads of each R4 type (msgspec Structs, FHIR element names)
    primitives.py    FHIR primitive types as decoder constraints (dates checked by the calendar)
    projection.py    one resource's JSON to the read model, or the reason it is not readable
    read_bundle.py   a Bundle or search page's JSON to the read model, one pass
    prefetch.py      CDS Hooks prefetch templates, the records of a hook call, its draft orders
    bulk.py          Bulk Data $export: kick-off, poll, stream the NDJSON
    spill.py         an export's records on disk, grouped by patient
    transaction.py   idempotent transactions of conditional creates
    capabilities.py  what a server says it can search (CapabilityStatement, cached)
    codesystems.py   the project's CodeSystems: their URLs, displays, publishing
    quirks.py        what servers do that the spec does not lead one to expect
"""
