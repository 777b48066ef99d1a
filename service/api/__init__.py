"""The HTTP surface: thin routes per area (``routes/``) over :mod:`service.workflow`.

    services.py    AppServices: the typed services create_app builds once
    deps.py        Annotated dependency aliases (Services, RequireScreen, RequireSession, ...)
    errors.py      the one ServiceError handler: problem+json, or the HTML page for a browser
    middleware.py  X-Request-ID on every response; security headers; no tokens in URLs
    sources.py     where the clinician's pages read and write (the EHR, or a demo Bundle)
    templates.py   the pages' Jinja2 environment
"""
