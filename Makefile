# Two commands matter: `make demo` and `make test`. Everything else is what they stand on.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
SANDBOX_PORT ?= 8080
export SANDBOX_PORT
AXE_VERSION := 4.14.1
AXE        := $(VENV)/axe/node_modules/axe-core/axe.min.js

.PHONY: setup demo demo-ui test test-unit sandbox sandbox-build browser axe lint bench bench-engine \
        bench-peers bench-population serve container-check openapi clean

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

## The main job on the embedded demo patients: no EHR, no network.
demo: setup
	$(BIN)/ketamine-screen demo

## The clinician's screens on the demo patients, through a stand-in EHR launcher page.
demo-ui: setup
	KETAMINE_DEMO=1 $(BIN)/ketamine-screen serve --port 8000

## Every test: unit, the HAPI FHIR sandbox (built and started by the suite), the browser tests.
test: setup sandbox-build browser axe
	$(BIN)/pytest

## The unit tier: no Java, no Redis, no browser needed (a fresh clone, in well under a minute).
test-unit: setup
	$(BIN)/pytest -m "not integration and not browser and not redis and not slow"

sandbox-build: setup
	$(BIN)/python tests/sandbox/manage.py build

## HAPI FHIR sandbox in the foreground on http://127.0.0.1:$(SANDBOX_PORT)/fhir
sandbox: sandbox-build
	$(BIN)/python tests/sandbox/manage.py run

## Debian's Chromium (browser tests; Playwright's own download is not used), redis-server
## (shared session state across replicas), poppler-utils (pdftoppm renders the printed session's
## PDF to an image) and npm (fetches axe-core), installed once if missing.
browser:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
	    >/dev/null || { echo "could not install$$missing (run as root, or install them)"; exit 1; }; \
	fi

## axe-core, the accessibility engine the browser tests inject into each page (test-only: it is
## never served by the app), pinned, from npm into the virtualenv.
axe: $(AXE)

$(AXE): | setup browser
	mkdir -p $(VENV)/axe
	npm install --no-audit --no-fund --silent --prefix $(VENV)/axe axe-core@$(AXE_VERSION)
	test -f $(AXE)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

bench-engine: setup
	$(BIN)/python -m bench.engine

## Every benchmark: engine, read-side projection, JSON codecs, service (peers included), and
## the 1,000-patient population (loads it into a sandbox of its own: allow ~20 minutes).
## The goals of one run are collected in one file and printed side by side at the end.
bench: export BENCH_GOALS = $(CURDIR)/.bench-goals.jsonl
bench: setup sandbox-build
	rm -f $(BENCH_GOALS)
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.projection
	$(BIN)/python -m bench.json_codecs
	$(BIN)/python -m bench.service
	$(BIN)/python -m bench.population
	$(BIN)/python -m bench.goals

bench-peers: setup sandbox-build
	$(BIN)/python -m bench.peers

bench-population: setup sandbox-build
	$(BIN)/python -m bench.population

serve: setup
	$(BIN)/ketamine-screen serve

openapi: setup
	$(BIN)/python -m service.openapi > openapi/openapi.json

## What the Dockerfile and compose.yaml do, without Docker: wheel -> fresh venv -> Redis and the
## service as compose runs them, as uid 10001 -> /healthz, /readyz, /metrics -> drain on SIGTERM.
container-check: setup
	bash scripts/container-check.sh

clean:
	rm -rf $(VENV) build dist *.egg-info tests/sandbox/target test-artifacts
