# syntax=docker/dockerfile:1
# Build the wheel in one stage, install it with the pinned constraints in a slim runtime.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY service ./service
COPY fhir_maps ./fhir_maps
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    KETAMINE_ENVIRONMENT=production
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin ketamine
WORKDIR /app
COPY --from=build /dist /dist
COPY constraints.txt /tmp/constraints.txt
RUN pip install -c /tmp/constraints.txt /dist/*.whl && rm -rf /dist /tmp/constraints.txt
USER ketamine
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
ENTRYPOINT ["ketamine-screen"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
