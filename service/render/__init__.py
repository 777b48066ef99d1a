"""The render stage: builds what we write and what people read; no I/O.

    writeback.py      the screening result as Observation, DetectedIssues, Device, Provenance
    session.py        a treatment session as Observations (session_input.py: what is recorded
                      and its checks; session_items.py: the one table of routes, products,
                      adverse events, MOAA/S levels, vitals steps)
    cds.py            CDS Hooks discovery and cards
    report.py         the text report; texts.py: the words for verdicts and kinds of finding
    html.py           view models of the pages; session_form.py: the session form; charts.py: SVG
"""
