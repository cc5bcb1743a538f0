# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export PORT

.PHONY: browser chromium translations translations-update wrk run test test-fast check lint fuzz install install-test openapi migrate clean bench bench-quick load clients clients-install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# compat editable mode puts the project root on sys.path, so new packages need no reinstall.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e . --config-settings editable_mode=compat
	touch $@

# The feed tests also read feeds with the JavaScript parsers web calendars use (ical.js, node-ical).
# The browser tests (tests/browser) inject axe-core into the pages; they drive Debian's chromium
# through chromedriver (apt: chromium chromium-driver; `make browser` installs them when missing).
FEED_PARSERS := tests/api/feed_parsers
BROWSER_TESTS := tests/browser
$(VENV)/.installed-test: pyproject.toml $(FEED_PARSERS)/package-lock.json $(BROWSER_TESTS)/package-lock.json $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	@if command -v npm >/dev/null 2>&1; then npm ci --silent --no-audit --no-fund --prefix $(FEED_PARSERS); \
		npm ci --silent --no-audit --no-fund --prefix $(BROWSER_TESTS); \
		else echo "npm not found: the feed tests leave out the JavaScript parsers, the browser tests are skipped"; fi
	touch $@

# What patients read, in their language: gettext catalogs (booking/i18n). The .po files are committed;
# their .mo files are compiled here, by every install, so a fresh clone has them (pybabel compile).
# translations-update: extract the message ids from the code into the template and merge them
# into each .po (then translate what is new; tests/domain/test_translations.py fails until then).
CATALOGS := booking/i18n/translations
CATALOG_PO := $(wildcard $(CATALOGS)/*/LC_MESSAGES/messages.po)
CATALOG_MO := $(CATALOG_PO:.po=.mo)
$(CATALOGS)/%/LC_MESSAGES/messages.mo: $(CATALOGS)/%/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(BIN)/pybabel compile --domain messages --input-file $< --output-file $@ --locale $*
translations: $(CATALOG_MO)
translations-update: install
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --project=needlebook \
		--copyright-holder=Needlebook -o booking/i18n/messages.pot api booking
	$(BIN)/pybabel update -i booking/i18n/messages.pot -d $(CATALOGS) --no-fuzzy-matching --width 100

install: $(VENV)/.installed $(CATALOG_MO)
install-test: $(VENV)/.installed-test $(CATALOG_MO)

migrate: install
	$(BIN)/flask --app wsgi migrate

# gunicorn and the scheduler process (follow-ups, hold expiry, reminders), started and stopped together.
run: migrate
	@$(BIN)/flask --app wsgi seed-demo
	@echo "API:  http://$(HOST):$(PORT)/v1   docs: http://$(HOST):$(PORT)/docs   health: http://$(HOST):$(PORT)/healthz"
	$(BIN)/python -m schedulers.serve --workers 2 --bind $(HOST):$(PORT) --access-log

# SQLite always; PostgreSQL too when TEST_POSTGRES_URL is set or a local server answers.
# Two workers (the machine's cores), each taking whole test files, so a file's servers and databases stay its own.
TEST_WORKERS ?= 2
test: install-test
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The tiers (tests/<tier>/, one marker each): domain (no database), services (database), api (HTTP),
# process (real gunicorn and scheduler processes, load), fuzz (schemathesis).
# check: domain and services on SQLite, the loop while changing rules or services.
check: install-test
	TEST_BACKENDS=sqlite $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "domain or services" $(PYTEST_ARGS)

# test-fast: check plus the api tier, SQLite only (no real processes, load or fuzzing).
test-fast: install-test
	TEST_BACKENDS=sqlite $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not process and not fuzz" $(PYTEST_ARGS)

# The reference pages in a real browser (tests/browser, marker `browser`; `make test` runs them too):
# booking, hold expiry, a slot taken meanwhile, the manage link, the day sheet, axe-core on each page.
# Screenshots and axe reports: tmp/artifacts/browser/.
chromium:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
		echo "Installing chromium and chromium-driver (Debian packages)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

browser: install-test chromium
	REQUIRE_BROWSER=1 $(BIN)/pytest -m browser $(PYTEST_ARGS)

# ruff (lint, then formatting) and mypy, configured in pyproject.toml; CI runs this before the tests.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Fuzzing at length: schemathesis against the committed OpenAPI document on SQLite and
# PostgreSQL, FUZZ_EXAMPLES generated requests per operation, then its stateful phase: FUZZ_SCENARIOS
# sequences of up to FUZZ_STEPS calls, chained through the links schemathesis infers (a created
# object's id fed to the operations that take it). No answer may be a 5xx or off the document.
# `make test` runs the same tests short (15 examples, 10 scenarios). e.g. make fuzz FUZZ_EXAMPLES=50
FUZZ_EXAMPLES ?= 300
FUZZ_SCENARIOS ?= 300
FUZZ_STEPS ?= 10
fuzz: install-test
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SCENARIOS=$(FUZZ_SCENARIOS) FUZZ_STEPS=$(FUZZ_STEPS) \
		$(BIN)/pytest tests/fuzz/test_schemathesis.py $(PYTEST_ARGS)

openapi: install
	$(BIN)/flask --app wsgi openapi write openapi/openapi.json

# The client check (clients/check): Redocly lint with no error, then what integrators generate from
# openapi/openapi.json, TypeScript types (openapi-typescript) and a Python client (openapi-python-client),
# with usage.ts and usage.py compiled against them under tsc --strict and mypy --strict. Its tools are
# pinned in clients/ (package-lock.json, requirements.txt) and kept apart from the app's venv.
CLIENTS := clients
$(CLIENTS)/node_modules/.installed: $(CLIENTS)/package-lock.json
	npm ci --silent --no-audit --no-fund --prefix $(CLIENTS)
	touch $@
$(CLIENTS)/.venv/.installed: $(CLIENTS)/requirements.txt
	$(PYTHON) -m venv $(CLIENTS)/.venv
	$(CLIENTS)/.venv/bin/pip install --quiet -r $(CLIENTS)/requirements.txt
	touch $@
clients-install: $(CLIENTS)/node_modules/.installed $(CLIENTS)/.venv/.installed
clients: clients-install
	$(CLIENTS)/check

# The availability benchmark (its targets and runs: bench/RESULTS.md): generates the 10k and 1M databases
# on the local PostgreSQL, serves them with gunicorn, loads them with wrk, profiles, reports; then
# booking throughput (bench/booking.py) and the django-appointment peer (bench/peer.py, its own venv).
# Databases generated in the last 12 hours are kept; BENCH_ARGS=--fresh regenerates them.
# Issue 15's scenarios: the bare floor (bench/bare_app.py) beside the in-app one, clinic-wide, practitioner-day,
# pooled clinic and chain-wide (5 and 50 clinics, limit=10 and full), the reference (bench/reference_app.py);
# every goal met / not met in bench/out/results.md (BENCH_ARGS=--write-results: bench/RESULTS.md too).
# bench-quick: the same ratios on small data built each time (5 and 50 clinics, 2k/40k history), short rounds,
# in under 5 minutes: a regression check, not the numbers of record.
BENCH_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[bench]' --config-settings editable_mode=compat
	touch $@

wrk:
	@command -v wrk >/dev/null 2>&1 || { echo "Installing wrk (Debian package)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk >/dev/null; }

bench: $(VENV)/.installed-bench wrk
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: $(VENV)/.installed-bench wrk
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

# Proof under load and faults (bench/load.py): two gunicorn nodes and two schedulers on a
# fresh PostgreSQL database, 120 clients for 60 s, SIGKILLs, then SQL checks; fails if one is off.
# LOAD_ARGS=--sqlite runs the one-node SQLite version; --duration, --clients, --keep: see --help.
LOAD_ARGS ?=
load: install
	$(BIN)/python -m bench.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) instance/*.sqlite3* instance/demo-api-key $(CLIENTS)/.venv $(CLIENTS)/node_modules $(CLIENTS)/generated
