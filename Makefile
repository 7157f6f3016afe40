# CSP Portal: every set-up step lives here, so a fresh clone needs only `make demo` or `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python
# The first interpreter >= 3.12 found (Django 6.1 needs it); pyenv's come last.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.14 python3 $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then command -v $$p; break; fi; done)
PG_URL ?= postgres://csp_portal:csp_portal@127.0.0.1:5432/csp_portal
# The page bench's data set: SCALE=20k (200 customers, 20,000 subscriptions) or SCALE=100k (1,000 customers,
# 100,000), 2,000 offers either way; a fresh SQLite file, or a fresh PostgreSQL database, per scale.
SCALE ?= 20k
BENCH_DB := var/bench-$(SCALE).sqlite3
PG_PAGES_DB := csp_portal_bench_$(SCALE)
PG_PAGES_URL ?= postgres://csp_portal:csp_portal@127.0.0.1:5432/$(PG_PAGES_DB)
# bench-serve: gunicorn on the 100k PostgreSQL database (made by `make bench-pg SCALE=100k`, or here if absent).
SERVE_DB := csp_portal_bench_100k
SERVE_URL ?= postgres://csp_portal:csp_portal@127.0.0.1:5432/$(SERVE_DB)
SERVE_PORT ?= 8765
# The lifecycle engine's bench: its own SQLite file, and its own PostgreSQL database next to the test one.
BENCH_LIFECYCLE_DB := var/bench-lifecycle.sqlite3
PG_BENCH_DB := csp_portal_bench
PG_BENCH_URL ?= postgres://csp_portal:csp_portal@127.0.0.1:5432/$(PG_BENCH_DB)
BENCH_ENV := DJANGO_DEBUG=0 DJANGO_SECRET_KEY=bench-only-key

.PHONY: help messages demo test test-pg lint bench bench-pg bench-serve bench-lifecycle chromium postgres clean

help:
	@echo "make demo     seeded demo site on http://127.0.0.1:$(PORT) (SQLite)"
	@echo "make test     the whole suite, browser tests included (SQLite)"
	@echo "make test-pg  the same suite on a local PostgreSQL"
	@echo "make lint     ruff, and import-linter's layers contract (pyproject.toml)"
	@echo "make bench    page times and SQL query counts on a large data set (SQLite; SCALE=20k or 100k), then the"
	@echo "              lifecycle engine's renewal rate (10,000 renewals on SQLite; one vs two engines on PostgreSQL)"
	@echo "make bench-pg the page bench on a local PostgreSQL (SCALE=20k or 100k)"
	@echo "make bench-serve  requests/s through gunicorn (3 workers, 4 clients) on PostgreSQL at 100k, and the export"

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "No Python >= 3.12 found (install python3.12 or newer)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check ".[dev]"
	@touch $@

# The translations, compiled from the .po catalogs in locale/ and <app>/locale/ (the .mo files are not committed).
messages: $(VENV)/.installed
	$(PY) manage.py compilemessages -v0 --ignore .venv --ignore build --ignore 'var/*'


var:
	@mkdir -p var

# The demo runs as production does (debug off: the portal's own error pages, static files from
# whitenoise), with a key that is only for this local demo, over plain HTTP on 127.0.0.1: so without
# HTTPS-only cookies, the redirect to HTTPS or HSTS, which debug off turns on.
DEMO_ENV := PORTAL_DEMO=1 DJANGO_DEBUG=0 DJANGO_SECRET_KEY=local-demo-only-not-secret DJANGO_SECURE_COOKIES=0 \
	DJANGO_SSL_REDIRECT=0 DJANGO_HSTS_SECONDS=0

demo: $(VENV)/.installed messages | var
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo
	$(DEMO_ENV) $(PY) manage.py collectstatic --noinput -v0
	@echo "Starting the background worker, the lifecycle engine and the server on http://127.0.0.1:$(PORT) (Ctrl-C stops all three)"
	@echo "The lifecycle engine first runs 2 minutes after start: until then the seeded renewal-pending and cycle-charge-pending subscriptions show as pending (changes answer 409); then they complete."
	@$(DEMO_ENV) $(PY) manage.py db_worker --interval 1 & worker=$$!; \
	$(DEMO_ENV) $(PY) manage.py run_lifecycle --loop --first-run-after 120 & lifecycle=$$!; \
	trap 'kill $$worker $$lifecycle 2>/dev/null' EXIT INT TERM; \
	$(DEMO_ENV) $(PY) manage.py runserver --noreload 127.0.0.1:$(PORT)

chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "Installing Chromium from apt"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }

test: lint messages chromium | var
	$(PY) -m pytest

# ruff's rules and import-linter's contracts (the layers, no import cycles), both configured in pyproject.toml.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

postgres:
	@command -v pg_ctlcluster >/dev/null 2>&1 || { echo "Installing PostgreSQL from apt"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null; }
	@ver=$$(ls /etc/postgresql | sort -n | tail -1); \
		pg_ctlcluster $$ver main status >/dev/null 2>&1 || pg_ctlcluster $$ver main start
	@for i in $$(seq 1 30); do runuser -u postgres -- psql -qAtc 'select 1' >/dev/null 2>&1 && break; sleep 1; done
	@runuser -u postgres -- psql -qAtc "select 1 from pg_roles where rolname='csp_portal'" | grep -q 1 || \
		runuser -u postgres -- psql -qc "create role csp_portal login createdb password 'csp_portal'"
	@runuser -u postgres -- psql -qAtc "select 1 from pg_database where datname='csp_portal'" | grep -q 1 || \
		runuser -u postgres -- createdb -O csp_portal csp_portal

test-pg: $(VENV)/.installed messages chromium postgres | var
	DATABASE_URL=$(PG_URL) $(PY) -m pytest

# Page times in bench-results-sqlite-$(SCALE).json; at 100k the growth is read from bench-results-sqlite-20k.json.
bench: $(VENV)/.installed | var
	rm -f $(BENCH_DB) $(BENCH_DB)-wal $(BENCH_DB)-shm
	DATABASE_URL=sqlite:///$(BENCH_DB) $(PY) manage.py migrate --noinput -v0
	DATABASE_URL=sqlite:///$(BENCH_DB) $(PY) manage.py seed_bench --scale $(SCALE)
	DATABASE_URL=sqlite:///$(BENCH_DB) $(BENCH_ENV) $(PY) manage.py bench --scale $(SCALE)
	@$(MAKE) --no-print-directory bench-lifecycle

# The same on PostgreSQL, in a fresh database of its own per scale: bench-results-postgresql-$(SCALE).json.
bench-pg: $(VENV)/.installed postgres | var
	runuser -u postgres -- dropdb --if-exists $(PG_PAGES_DB)
	runuser -u postgres -- createdb -O csp_portal $(PG_PAGES_DB)
	DATABASE_URL=$(PG_PAGES_URL) $(PY) manage.py migrate --noinput -v0
	DATABASE_URL=$(PG_PAGES_URL) $(PY) manage.py seed_bench --scale $(SCALE)
	DATABASE_URL=$(PG_PAGES_URL) $(BENCH_ENV) $(PY) manage.py bench --scale $(SCALE)

# gunicorn (3 sync workers) on the 100k PostgreSQL database, 4 concurrent clients on loopback for a bounded time:
# requests/s per page against the floor's, the workers' memory, the export through a worker; bench-serve.json.
bench-serve: $(VENV)/.installed postgres | var
	@runuser -u postgres -- psql -qAtc "select 1 from pg_database where datname='$(SERVE_DB)'" | grep -q 1 || { \
		runuser -u postgres -- createdb -O csp_portal $(SERVE_DB) && \
		DATABASE_URL=$(SERVE_URL) $(PY) manage.py migrate --noinput -v0 && \
		DATABASE_URL=$(SERVE_URL) $(PY) manage.py seed_bench --scale 100k; }
	DATABASE_URL=$(SERVE_URL) $(PY) manage.py migrate --noinput -v0
	DATABASE_URL=$(SERVE_URL) $(BENCH_ENV) $(PY) manage.py bench_serve --port $(SERVE_PORT)

# 10,000 due subscriptions renewed by one engine run on SQLite (target < 20 s), then on PostgreSQL by one engine
# and by two at once; figures in bench-lifecycle.json. The command deletes the data it made.
bench-lifecycle: $(VENV)/.installed postgres | var
	rm -f $(BENCH_LIFECYCLE_DB) $(BENCH_LIFECYCLE_DB)-wal $(BENCH_LIFECYCLE_DB)-shm
	DATABASE_URL=sqlite:///$(BENCH_LIFECYCLE_DB) $(PY) manage.py migrate --noinput -v0
	DATABASE_URL=sqlite:///$(BENCH_LIFECYCLE_DB) $(BENCH_ENV) $(PY) manage.py bench_lifecycle --output bench-lifecycle.json
	@# A fresh database each time, like the SQLite one: nothing left from an earlier schema or run.
	runuser -u postgres -- dropdb --if-exists $(PG_BENCH_DB)
	runuser -u postgres -- createdb -O csp_portal $(PG_BENCH_DB)
	DATABASE_URL=$(PG_BENCH_URL) $(PY) manage.py migrate --noinput -v0
	DATABASE_URL=$(PG_BENCH_URL) $(BENCH_ENV) $(PY) manage.py bench_lifecycle --engines 2 --output bench-lifecycle.json

clean:
	rm -rf $(VENV) var staticfiles bench-results*.json bench-lifecycle.json bench-serve.json
