# The clinic assistant. `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Clinic settings (phone numbers, ports, database URL) from an optional .env; see .env.example.
-include .env
export

# Quiet, private runs everywhere: no telemetry, no TensorFlow or deprecation chatter.
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONWARNINGS := ignore
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
# Ports (the action endpoint URL follows ACTION_PORT unless ACTION_ENDPOINT_URL is set).
ACTION_PORT ?= 5055
RASA_PORT ?= 5005
# This machine only by default; RASA_INTERFACE=0.0.0.0 opens it (REST then needs REST_TOKEN).
RASA_INTERFACE ?= 127.0.0.1
# Rasa's SQL tracker store (endpoints.yml) and the call-back requests: one SQLite file.
CONVERSATIONS_DB ?= build/conversations.db

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIPELINE_STAMP := build/spacy-en-clinic/clinic-pipeline.sha256
# The chat page's front-end packages (web/package-lock.json) and the browser tests' Chromium.
WEB_STAMP := web/node_modules/.installed
# Test only: the unmodified rasa-webchat widget the browser tests embed on another site.
WEBCHAT_STAMP := tests/browser/webchat/node_modules/.installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: audit help install generate pipeline knowledge model web webchat chromium run supervise shell test test-fast lint bench bench-quality bench-load bench-insights clean nginx run-scaled bench-scaled bench-soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@python=$$(scripts/find-python) || exit 1; \
	echo "using $$python"; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then \
		rm -rf $(VENV) && "$$python" -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade "pip==24.0" "setuptools==70.3.0" "wheel==0.45.1"
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install pinned dependencies

generate: $(STAMP) ## regenerate spaCy patterns and Rasa lookups from knowledge/vocabulary.yml
	$(PY) -m knowledge generate

pipeline: $(STAMP) ## build the project's spaCy pipeline (build/spacy-en-clinic)
	@$(PY) -m knowledge pipeline

knowledge: pipeline ## build the knowledge store from knowledge/sources
	@$(PY) -m knowledge build

model: knowledge ## train the Rasa model if data, domain, config or vocabulary changed
	@$(PY) -m bot train

$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm (Node.js 18 or later) is needed for the chat page's packages" >&2; exit 1; }
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	@touch $(WEB_STAMP)

web: $(WEB_STAMP) ## install the chat page's front-end packages from web/package-lock.json

$(WEBCHAT_STAMP): tests/browser/webchat/package.json tests/browser/webchat/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm (Node.js 18 or later) is needed for the browser tests' packages" >&2; exit 1; }
	npm ci --prefix tests/browser/webchat --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $(WEBCHAT_STAMP)

webchat: $(WEBCHAT_STAMP) ## the browser tests' rasa-webchat 1.0.1 (npm, tests/browser/webchat)

chromium: ## Debian's Chromium for the browser tests (apt-get install when missing)
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		echo "installing Debian's chromium for the browser tests (apt-get)"; \
		{ $$sudo apt-get update -qq && \
		  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		{ echo "error: could not install chromium; run 'apt-get install chromium' or set CHROMIUM=/path/to/chromium" >&2; exit 1; }; \
	fi

run: model web ## install, build, train if needed, and serve on :5005 (actions on :5055)
	@$(PY) -m bot run

# Under supervisord (deploy/supervisord, docs/operations.md). Both servers need one shared
# ACTION_TOKEN: unless .env sets one, it is made once in build/secrets/action.token.
SUPERVISORD_CONF := deploy/supervisord/supervisord.conf
supervise: model web ## serve under supervisord, restarted on a crash or hang (docs/operations.md)
	@mkdir -p build/logs build/secrets
	@if [ -z "$$ACTION_TOKEN$$ACTION_TOKEN_FILE" ]; then \
		[ -s build/secrets/action.token ] || (umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(32))' > build/secrets/action.token); \
		export ACTION_TOKEN_FILE=$(CURDIR)/build/secrets/action.token; \
	fi; \
	$(VENV)/bin/supervisord -c $(SUPERVISORD_CONF) && \
	echo "supervisord started: $(VENV)/bin/supervisorctl -c $(SUPERVISORD_CONF) status; http://localhost:$(RASA_PORT)/health"

shell: model ## the same, talking in the terminal (rasa shell)
	@$(PY) -m bot shell

test: model web webchat chromium nginx ## everything the tests need, then the whole suite
	$(PY) -m pytest -q

test-fast: knowledge ## unit tests only (no trained model, no servers)
	$(PY) -m pytest -q -m "not slow and not e2e"

AUDIT_VENV := build/audit-venv
$(AUDIT_VENV)/.installed: requirements-audit.txt
	@python=$$(scripts/find-python) || exit 1; "$$python" -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/pip install --quiet -r requirements-audit.txt
	@touch $@

audit: $(AUDIT_VENV)/.installed ## known vulnerabilities in the pinned dependencies (pip-audit, asks PyPI)
	scripts/audit

# AUDIT=skip lints without the dependency audit (it needs PyPI's or OSV's vulnerability data).
AUDIT ?= run
lint: $(STAMP) ## ruff (checks and format), mypy, the layers (import-linter) and the dependency audit (pip-audit; AUDIT=skip to leave it out)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy clinic knowledge records actions staff bot
	$(VENV)/bin/lint-imports --no-cache
	@if [ "$(AUDIT)" = skip ]; then echo "dependency audit skipped (AUDIT=skip)"; else $(MAKE) --no-print-directory audit; fi

bench: model ## the whole benchmark: quality, costs, load vs stock rasa init, insights page (~16 min; docs/benchmarks.md)
	$(PY) -m bench

bench-quality: model ## answer quality on the held-out questions (prints figures)
	$(PY) -m bench.quality

bench-load: model ## speed under load against a stock rasa init bot (~8 min)
	$(PY) -m bench.load

bench-insights: $(STAMP) ## the staff insights page on 100,000 conversations (prints the figure)
	$(PY) -m bench.insights

nginx: ## Debian's nginx for the scaled profile and its tests, when missing
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt-get install -y nginx

run-scaled: model nginx ## N Rasa + N action servers behind nginx on PostgreSQL/Redis (docs/scale-out.md)
	@$(PY) -m bot scaled

bench-scaled: model nginx ## scaled profile: cross-server audit, load and soak figures (~6 min)
	$(PY) -m bench.scaled --compare-stock

clean: ## remove built things (keeps .venv)
	rm -rf build models results .pytest_cache .mypy_cache .ruff_cache

# SOAK_PROFILE=default|scaled, DURATION in minutes (30 / 10), CONVERSATIONS (16),
# FILL events in the tracker store beforehand (1000000), INTERVAL seconds (60).
SOAK_PROFILE ?= default
CONVERSATIONS ?= 16
FILL ?= 1000000
INTERVAL ?= 60
bench-soak: model ## long run on a store filled with 1M events: intervals and docs/soak-<profile>.png
	@if [ "$(SOAK_PROFILE)" = scaled ]; then $(MAKE) --no-print-directory nginx; fi
	$(PY) -m bench.soak --profile $(SOAK_PROFILE) $(if $(DURATION),--minutes $(DURATION)) \
		--conversations $(CONVERSATIONS) --fill $(FILL) --interval $(INTERVAL)
