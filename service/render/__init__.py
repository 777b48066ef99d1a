"""The render stage: builds what we write and what people read; no I/O.

    writeback.py      the screening result as Observation, DetectedIssues, Provenance
    session.py        a treatment session as Observations (session_input.py: what is recorded
                      and its checks, the REMS form's items; session_items.py: the one table of
                      routes, products, adverse events, MOAA/S levels, vitals steps, REMS
                      constants)
    course_map.py     fhir_maps/treatment-course.yaml: REMS minutes and window, dose presets,
                      concomitant questions, PHQ-9 items and outcome thresholds, SNOMED codes
    rems_form.py      the REMS form's submission as a Task (created with the session, completed
                      by a conditional update)
    integration.py    an integration (psychotherapy) session as a Procedure
    phq9.py           a PHQ-9 as QuestionnaireResponse + 44261-6 Observation; response, remission
    course_read.py    the course read back from the chart (sessions, Tasks, Procedures, PHQ-9,
                      screenings); fhir_time.py: FHIR dateTimes
    course.py         the due list, the timeline and its gaps, the printed form's sections;
                      course_forms.py: the integration, PHQ-9 and submission forms
    cds.py            CDS Hooks discovery and cards
    report.py         the text report; texts.py: the words for verdicts and kinds of finding
    html.py           view models of the pages; session_form.py: the session form; charts.py: SVG
"""
