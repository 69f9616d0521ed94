# postwarden: `make run` to start, `make test` to check everything. `make help` lists all.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_CLIENT := tests/clients/node
CHROMIUM := /usr/bin/chromium
CHROMIUM_LOG := $(or $(TMPDIR),/tmp)/postwarden-chromium-install.log

.DEFAULT_GOAL := help
.PHONY: help install run migrate test test-fast lint fmt bench clean browser

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install postwarden with its dev tools

run: $(STAMP) ## Migrate the embedded SQLite database under ./var and serve on http://127.0.0.1:8025
	$(BIN)/postwarden migrate
	$(BIN)/postwarden serve --host 127.0.0.1 --port 8025

migrate: $(STAMP) ## Create or upgrade the database schema
	$(BIN)/postwarden migrate

$(NODE_CLIENT)/node_modules/.package-lock.json: $(NODE_CLIENT)/package-lock.json
	npm ci --prefix $(NODE_CLIENT) --no-audit --no-fund --loglevel=error

# The browser tests drive Debian's chromium (never a browser that Playwright downloads). When it
# cannot be installed, this says so loudly and goes on: the browser tests then skip, loudly too.
browser: ## Install Debian's chromium for the browser tests when it is missing (needs root and apt-get)
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser tests (apt-get, log in $(CHROMIUM_LOG))"; \
		if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
			>$(CHROMIUM_LOG) 2>&1; then \
			tail -n 5 $(CHROMIUM_LOG); \
			echo "!!! WARNING: apt-get could not install chromium: the browser tests will be SKIPPED !!!"; \
		fi; \
	else \
		echo "!!! WARNING: $(CHROMIUM) is missing and cannot be installed here (needs root and apt-get):" \
			"the browser tests will be SKIPPED !!!"; \
	fi

lint: $(STAMP) ## ruff and mypy --strict
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

fmt: $(STAMP) ## Format and fix what ruff can
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: $(STAMP) $(NODE_CLIENT)/node_modules/.package-lock.json browser lint ## Lint, then every test on SQLite and PostgreSQL
	$(BIN)/python -m pytest -n 2

test-fast: $(STAMP) ## Tests only, SQLite only, no lint
	$(BIN)/python -m pytest -n 2 -k "sqlite"

bench: $(STAMP) ## API throughput against a bare Starlette app
	$(BIN)/python bench/api_throughput.py

.PHONY: bench-webhooks
bench-webhooks: $(STAMP) ## Webhook deliveries/s against a bare httpx loop and wrk
	$(BIN)/python bench/webhooks.py

.PHONY: bench-scim
bench-scim: $(STAMP) ## SCIM filters and paging at 1k, 10k, 100k users against scim2-server
	$(BIN)/python bench/scim.py

.PHONY: bench-audit
bench-audit: $(STAMP) ## Audit log export and verify at 10k and 1M events: time and peak RSS
	$(BIN)/python bench/audit.py

.PHONY: bench-console
bench-console: $(STAMP) ## Console Users page time to first byte at 10 and 1,000 members, 100 servers
	$(BIN)/python bench/console.py

clean: ## Remove the virtualenv and local data
	rm -rf $(VENV) var .mypy_cache .pytest_cache .ruff_cache
