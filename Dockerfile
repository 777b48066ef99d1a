# syntax=docker/dockerfile:1
# Build the wheel in one stage, install it with the pinned constraints in a slim runtime.
# The base is pinned to a full version tag; pin its digest too (python:3.11.7-slim-bookworm@sha256:...)
# where a registry can be asked for it.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY service ./service
COPY fhir_maps ./fhir_maps
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
LABEL org.opencontainers.image.title="ketamine-screen" \
      org.opencontainers.image.description="SMART-on-FHIR plug-in that screens patients for ketamine / esketamine therapy and documents treatment sessions" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="LicenseRef-Proprietary" \
      org.opencontainers.image.base.name="docker.io/library/${PYTHON_IMAGE}"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    KETAMINE_ENVIRONMENT=production
# A numeric user and group (not root), so that runAsNonRoot / runAsUser can verify them.
RUN groupadd --system --gid 10001 ketamine \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin ketamine
WORKDIR /app
COPY --from=build /dist /dist
COPY constraints.txt /tmp/constraints.txt
RUN pip install -c /tmp/constraints.txt /dist/*.whl && rm -rf /dist /tmp/constraints.txt
USER 10001:10001
# 8000: the service; 9464: Prometheus /metrics when KETAMINE_METRICS_PORT=9464 (never public).
EXPOSE 8000 9464
# On SIGTERM uvicorn stops accepting, lets requests in flight finish for
# KETAMINE_SHUTDOWN_GRACE_SECONDS (20 s), then exits: give it longer than that to stop.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
ENTRYPOINT ["ketamine-screen"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
