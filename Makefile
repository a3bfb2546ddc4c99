# VRM Portal — developer and CI tasks.  `make help` lists them.
#
# Everything runs from a project-local virtualenv (.venv), created on first use, so a
# fresh clone needs only Python 3.11 and make.  Requirements are re-installed when a
# pinned file changes (stamp files in .venv record what was installed).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

# ---- knobs (override on the command line or in the environment) -------------------
PYTHON      ?= python3
VENV        ?= .venv
PORT        ?= 5000
WORKERS     ?= 2
PYTEST_ARGS ?=
RUN_ARGS    ?=
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
LOCALES     ?= fr
CHROMIUM    ?= $(or $(VRM_CHROMIUM),/usr/bin/chromium)

# ---- derived --------------------------------------------------------------------
BIN           := $(VENV)/bin
PY            := $(BIN)/python
PIP           := $(PY) -m pip
FLASK         := $(BIN)/flask --app wsgi
RUFF          := $(BIN)/ruff
PYBABEL       := $(BIN)/pybabel
TRANSLATIONS  := vrm_portal/translations
POT           := $(TRANSLATIONS)/messages.pot
VENV_MARKER   := $(VENV)/pyvenv.cfg
RUNTIME_STAMP := $(VENV)/.stamp-runtime
DEV_STAMP     := $(VENV)/.stamp-dev

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv install install-dev browser translations run serve vrm test test-pg redis \
        lint format typecheck check-migrations migration messages lock clean

help: ## List the targets (this text)
	@echo "VRM Portal — make targets"
	@echo
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) \
	  | awk 'BEGIN {FS = ":.*## "} {printf "  %-18s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: PORT=$(PORT)  WORKERS=$(WORKERS)  PYTEST_ARGS='$(PYTEST_ARGS)'  RUN_ARGS='$(RUN_ARGS)'"
	@echo "           PG_TEST_URL=$(PG_TEST_URL)"
	@echo "           VRM_CHECK_PG_URL=<scratch PostgreSQL database for check-migrations; it is DROPPED>"
	@echo "Examples:  make run PORT=8000   make test PYTEST_ARGS='-x -k login'   make migration m='add brands'"
	@echo "           make vrm ARGS='list-brands --json'   (an operator command on the make run portal)"

# ---- environment ----------------------------------------------------------------

venv: $(VENV_MARKER) ## Create .venv (with python3, or PYTHON=...) if it does not exist

$(VENV_MARKER):
	@echo "==> creating $(VENV) with $$(command -v $(PYTHON)) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)

install: $(RUNTIME_STAMP) ## Install the pinned runtime requirements into .venv

$(RUNTIME_STAMP): requirements.txt | $(VENV_MARKER)
	@echo "==> installing runtime requirements (requirements.txt)"
	$(PIP) install --quiet -r requirements.txt
	@touch $@

install-dev: $(DEV_STAMP) browser ## Install runtime + test/lint tools, and a Chromium for the e2e tests

$(DEV_STAMP): requirements.txt requirements-dev.txt $(RUNTIME_STAMP)
	@echo "==> installing test and lint tools (requirements-dev.txt)"
	$(PIP) install --quiet -r requirements.txt -r requirements-dev.txt
	@touch $@

# The e2e tests drive Debian's Chromium (VRM_CHROMIUM, default /usr/bin/chromium).
# Without it: install it with apt when we can (root + apt-get), else let Playwright
# download its own build (then the tests use that one).
browser: $(DEV_STAMP) ## Make sure a Chromium exists for the Playwright e2e tests
	@if [ -x "$(CHROMIUM)" ]; then \
	  echo "==> browser: using $(CHROMIUM)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "==> browser: $(CHROMIUM) is missing; installing Debian's chromium with apt-get"; \
	  echo "+ apt-get update && apt-get install -y chromium fonts-liberation"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-liberation; \
	else \
	  echo "==> browser: $(CHROMIUM) is missing and apt-get/root is not available;"; \
	  echo "    downloading Playwright's Chromium instead: $(BIN)/playwright install chromium"; \
	  $(BIN)/playwright install chromium; \
	fi

translations: $(RUNTIME_STAMP) ## Compile the translation catalogues (.po -> .mo)
	@if ls $(TRANSLATIONS)/*/LC_MESSAGES/*.po >/dev/null 2>&1; then \
	  echo "+ $(PYBABEL) compile --statistics -d $(TRANSLATIONS)"; \
	  $(PYBABEL) compile --statistics -d $(TRANSLATIONS); \
	else \
	  echo "==> translations: no .po catalogue under $(TRANSLATIONS)/ yet; nothing to compile"; \
	fi

# ---- run ------------------------------------------------------------------------

# Development server on SQLite (instance/vrm.sqlite3), mail written to instance/outbox/.
run: export VRM_ENV := development
run: install translations ## Run the app locally: create/upgrade the DB, seed demo data, serve on http://127.0.0.1:PORT (5000)
	@export VRM_PUBLIC_BASE_URL="$${VRM_PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)}"; \
	echo "+ $(FLASK) vrm init-db"; \
	$(FLASK) vrm init-db; \
	echo "+ $(FLASK) vrm seed-demo"; \
	$(FLASK) vrm seed-demo; \
	echo; \
	echo "  VRM Portal (development) → http://127.0.0.1:$(PORT)"; \
	echo "  Outgoing mail is written to instance/outbox/.  Stop with Ctrl+C."; \
	echo "  \"Continue with Demo ID\" signs in through the built-in development provider (/dev-idp)."; \
	echo "  A job worker runs beside the server (emails, expiry, erasures, webhooks, reminders);"; \
	echo "  its log is instance/worker.log."; \
	echo; \
	$(FLASK) vrm worker >> instance/worker.log 2>&1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(FLASK) run --host 127.0.0.1 --port $(PORT) $(RUN_ARGS)

# An operator command on the development portal of `make run` (same settings, same
# database), from another terminal: make vrm ARGS="list-brands --json".  Only the
# command writes to stdout (the install check goes to stderr), so its output pipes.
vrm: export VRM_ENV := development
vrm: ## Run a `vrm` command on the development portal: make vrm ARGS="list-brands --json"
	@$(MAKE) --no-print-directory --silent install >&2
	@export VRM_PUBLIC_BASE_URL="$${VRM_PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)}"; \
	$(FLASK) vrm $(ARGS)

# Production-like: gunicorn with whatever VRM_* settings the environment holds
# (VRM_ENV defaults to production, so VRM_SECRET_KEY etc. must be set).
serve: install translations ## Start gunicorn and a job worker like production, with the current environment's VRM_* settings
	$(FLASK) vrm init-db
	@$(FLASK) vrm worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn -w $(WORKERS) -b 127.0.0.1:$(PORT) --access-logfile - wsgi:app

# ---- quality --------------------------------------------------------------------

test: install-dev translations ## Run the whole test suite, e2e included (PYTEST_ARGS=... to pass options)
	$(PY) -m pytest $(PYTEST_ARGS)

test-pg: install-dev translations redis ## Run the whole test suite on PostgreSQL (PG_TEST_URL), jobs queued in Redis (REDIS_TEST_URL)
	VRM_TEST_DATABASE_URL='$(PG_TEST_URL)' VRM_TEST_JOBS_URL='$(REDIS_TEST_URL)' $(PY) -m pytest $(PYTEST_ARGS)

# The PostgreSQL pass queues the worker tests' jobs in Redis: start a local one when
# nothing answers at 127.0.0.1:6379 (it keeps nothing on disk).
redis: ## Make sure a Redis answers at 127.0.0.1:6379 (starts redis-server if needed)
	@if $(PY) -c "import redis; redis.Redis.from_url('$(REDIS_TEST_URL)').ping()" 2>/dev/null; then \
	  echo "==> redis: $(REDIS_TEST_URL) answers"; \
	elif command -v redis-server >/dev/null 2>&1; then \
	  echo "+ redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"; \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no; \
	  sleep 1; \
	else \
	  echo "==> redis: nothing answers at $(REDIS_TEST_URL) and redis-server is not installed" >&2; \
	  echo "    (Debian: apt-get install redis-server)" >&2; exit 1; \
	fi

lint: $(DEV_STAMP) ## Check code style (ruff check + ruff format --check)
	$(RUFF) check .
	$(RUFF) format --check .

format: $(DEV_STAMP) ## Fix what ruff can fix, then reformat
	$(RUFF) check --fix --exit-zero .
	$(RUFF) format .

typecheck: $(DEV_STAMP) ## Type-check with mypy (strict; files listed in pyproject.toml)
	$(BIN)/mypy

# ---- database migrations --------------------------------------------------------

# Drops, or drops and re-creates, the PostgreSQL database named in a URL, by connecting
# to the server's "postgres" database with the venv's psycopg (no psql needed).
define SCRATCH_DB_PY
import sys
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

action, url = sys.argv[1], make_url(sys.argv[2])
name = url.database
if not name or name in {"postgres", "template0", "template1"}:
    sys.exit(f"refusing to {action} database {name!r}: use a scratch database")
server = url.set(drivername="postgresql", database="postgres")
with psycopg.connect(server.render_as_string(hide_password=False), autocommit=True) as conn:
    force = sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)) + force)
    if action == "create":
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
print(f"==> scratch database {name!r}: {'re-created' if action == 'create' else 'dropped'}")
endef
export SCRATCH_DB_PY

# Upgrade from empty to head, compare models with the schema, downgrade to base,
# upgrade again (and compare again): on SQLite always, on PostgreSQL when
# VRM_CHECK_PG_URL names a scratch database (it is dropped before and after).
check-migrations: install translations ## Check migrations: drift against the models + downgrade/upgrade round trip (SQLite; PostgreSQL if VRM_CHECK_PG_URL)
	@tmp="$$(mktemp -d)"; \
	pg_url="$${VRM_CHECK_PG_URL:-}"; \
	cleanup() { \
	  if [ -n "$$pg_url" ]; then $(PY) -c "$$SCRATCH_DB_PY" drop "$$pg_url" || true; fi; \
	  rm -rf "$$tmp"; \
	}; \
	trap cleanup EXIT; \
	export VRM_ENV=development VRM_INSTANCE_PATH="$$tmp/instance"; \
	round_trip() { \
	  export VRM_DATABASE_URL="$$2"; \
	  echo "==> $$1: upgrade an empty database to head"; \
	  $(FLASK) vrm init-db; \
	  echo "==> $$1: compare the models with the migrated schema"; \
	  $(FLASK) vrm check-migrations; \
	  echo "==> $$1: downgrade to base"; \
	  $(FLASK) vrm downgrade-db --revision base; \
	  echo "==> $$1: upgrade to head again"; \
	  $(FLASK) vrm init-db; \
	  $(FLASK) vrm check-migrations; \
	  echo "==> $$1: migrations OK"; \
	}; \
	round_trip SQLite "sqlite:///$$tmp/check-migrations.sqlite3"; \
	if [ -n "$$pg_url" ]; then \
	  $(PY) -c "$$SCRATCH_DB_PY" create "$$pg_url"; \
	  round_trip PostgreSQL "$$pg_url"; \
	else \
	  echo "==> PostgreSQL: skipped (set VRM_CHECK_PG_URL to a scratch database to include it)"; \
	fi

MIGRATION_DB ?= /tmp/vrm-migration.sqlite3

migration: $(DEV_STAMP) translations ## Autogenerate a migration from the models: make migration m="what changed"
	@if [ -z "$(m)" ]; then echo 'usage: make migration m="add consent purposes"' >&2; exit 2; fi
	@rm -f $(MIGRATION_DB); \
	trap 'rm -f $(MIGRATION_DB)' EXIT; \
	export VRM_ENV=development VRM_DATABASE_URL="sqlite:///$(MIGRATION_DB)"; \
	echo "+ $(FLASK) vrm init-db   (on $(MIGRATION_DB))"; \
	$(FLASK) vrm init-db; \
	last="$$(ls migrations/versions | sed -n 's/^\([0-9][0-9][0-9][0-9]\)_.*\.py$$/\1/p' | sort | tail -n 1)"; \
	rev="$$(printf '%04d' $$((10#$${last:-0} + 1)))"; \
	echo "+ $(BIN)/alembic revision --autogenerate --rev-id $$rev -m \"$(m)\""; \
	$(BIN)/alembic revision --autogenerate --rev-id "$$rev" -m "$(m)"; \
	echo "==> review the new file in migrations/versions/ (autogenerate misses renames,"; \
	echo "    server defaults and data moves), then run: make check-migrations"

# ---- translations & dependencies ------------------------------------------------

messages: $(RUNTIME_STAMP) ## Extract messages to messages.pot and merge them into the catalogues (LOCALES=fr)
	$(PYBABEL) extract -F babel.cfg -k _l -k lazy_gettext -k lazy_ngettext:1,2 -c TRANSLATORS: \
	  --project="VRM Portal" -o $(POT) .
	@for locale in $(LOCALES); do \
	  if [ ! -f $(TRANSLATIONS)/$$locale/LC_MESSAGES/messages.po ]; then \
	    echo "+ $(PYBABEL) init -i $(POT) -d $(TRANSLATIONS) -l $$locale"; \
	    $(PYBABEL) init -i $(POT) -d $(TRANSLATIONS) -l $$locale; \
	  fi; \
	done
	$(PYBABEL) update -i $(POT) -d $(TRANSLATIONS)

lock: | $(VENV_MARKER) ## Re-pin requirements*.txt from requirements*.in (LOCK_ARGS=--upgrade to take new releases)
	@$(PY) -m piptools --version >/dev/null 2>&1 || { \
	  echo "==> installing pip-tools into $(VENV)"; $(PIP) install --quiet pip-tools; }
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --strip-extras \
	  --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) \
	  --output-file=requirements.txt requirements.in
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --strip-extras \
	  --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) \
	  --output-file=requirements-dev.txt requirements-dev.in

clean: ## Remove caches, test output, compiled catalogues and instance/outbox (keeps .venv and the DB)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf .pytest_cache .mypy_cache .ruff_cache test-results instance/outbox
	find $(TRANSLATIONS) -name '*.mo' -type f -delete 2>/dev/null || true

# ---- benchmarks -----------------------------------------------------------------

.PHONY: bench bench-api wrk
bench: install ## Consent ledger benchmarks on SQLite (BENCH_ARGS='--database-url postgresql+psycopg://...' for PostgreSQL); brand API: make bench-api
	$(PY) bench/consent_ledger.py $(BENCH_ARGS)

# The brand API benchmark drives gunicorn with wrk: install it with apt when it is
# missing and we can (root + apt-get), as `browser` does for Chromium.
wrk: ## Make sure wrk (HTTP load generator, for bench-api) is installed
	@if command -v wrk >/dev/null 2>&1; then \
	  echo "==> wrk: using $$(command -v wrk)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "==> wrk is missing; installing Debian's wrk with apt-get"; \
	  echo "+ apt-get update && apt-get install -y wrk"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk; \
	else \
	  echo "==> wrk is missing and apt-get/root is not available: install wrk, or run" >&2; \
	  echo "    make bench-api BENCH_ARGS=--skip-wrk (the lookup benchmark needs wrk)" >&2; \
	fi

bench-api: install wrk ## Brand API benchmarks (gunicorn + wrk) on SQLite (BENCH_ARGS='--database-url postgresql+psycopg://...' for PostgreSQL)
	$(PY) bench/brand_api.py $(BENCH_ARGS)

.PHONY: bench-export
bench-export: install ## Export benchmark: time and peak memory for 1k/10k/100k history entries (BENCH_ARGS='--database-url postgresql+psycopg://...' for PostgreSQL)
	$(PY) bench/export.py $(BENCH_ARGS)

.PHONY: bench-mydata
bench-mydata: install ## My data benchmark: timeline and "who read my data" pages for 100k history entries (BENCH_ARGS='--database-url postgresql+psycopg://...' for PostgreSQL)
	$(PY) bench/my_data.py $(BENCH_ARGS)

.PHONY: bench-log
.PHONY: bench-write
bench-write: install ## Write path benchmark: statements and CPU per consent save, 1 vs 8 writers, feed lag, the one-consumer read, withdraw-all (BENCH_ARGS='--database-url postgresql+psycopg://...' for PostgreSQL)
	$(PY) bench/write_path.py $(BENCH_ARGS)

bench-log: install ## Public consent log benchmark: writes with/without the tree, proofs, checkpoint, bundle over 1,000,000 events (BENCH_ARGS='--database-url postgresql+psycopg://...' for PostgreSQL)
	$(PY) bench/transparency_log.py $(BENCH_ARGS)

.PHONY: bench-renewal
bench-renewal: install ## Renewal notices benchmark: a new purpose version for 100k consumers, time and peak memory of the job (BENCH_ARGS='--database-url postgresql+psycopg://...' for PostgreSQL)
	$(PY) bench/renewal_notices.py $(BENCH_ARGS)

.PHONY: bench-office
bench-office: install ## Privacy office benchmark: consent log search pages, statistics and CSV export over 1,000,000 events (SQLite file in /tmp; BENCH_ARGS='--database-url postgresql+psycopg://.../vrm_office_bench' for PostgreSQL)
	$(PY) bench/privacy_office_search.py $(BENCH_ARGS)

.PHONY: bench-jobs
bench-jobs: install redis ## Job engine benchmark: no-op and email jobs/s through the worker (SQLite file and Redis db 13 queues) vs inline (BENCH_ARGS='--database-url postgresql+psycopg://...' for PostgreSQL)
	$(PY) bench/jobs.py $(BENCH_ARGS)

# Never in CI: several minutes, and it starts (and breaks) servers of its own.
.PHONY: bench-faults
bench-faults: install translations ## Faults under load: gunicorn + worker on a PostgreSQL and a Redis of the run's own, restarted, killed and stopped under a mixed load; checks nothing is lost (BENCH_ARGS='--minutes 4' for a shorter run)
	$(PY) bench/faults.py $(BENCH_ARGS)
