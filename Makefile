# Two commands do everything on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the pinned environment when it is missing.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)

.PHONY: setup demo test test-fast bench lint format clean browser java postgres

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

# The Spark engine (pyspark, installed with the lock) needs a Java 17 or 21 runtime.
java:
	@if command -v java >/dev/null 2>&1; then \
	  java -version 2>&1 | head -1 | grep -Eq '"(17|21)[."]' \
	    || echo "java found but not 17/21 ($$(java -version 2>&1 | head -1)): Spark tests may fail"; \
	else echo "Java missing: Spark tests will be skipped (apt-get install openjdk-17-jre-headless)"; fi

# Headless Chromium for the report's browser tests (Debian packages; root on CI).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: browser tests will be skipped"; fi; }

# PostgreSQL server binaries for the warehouse tests, which start their own server in a
# temporary directory (Debian's postgresql; root on CI). The package's own cluster is not used.
postgres:
	@test -x "$$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | tail -1)" || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "postgresql missing: warehouse tests will be skipped"; fi; }

demo: setup
	$(PY) -m flows.cli demo

test: setup browser java postgres
	$(PY) -m pytest -n 2 --dist loadgroup

test-fast: setup
	$(PY) -m pytest -n 2 -m "not slow"

# Full-size benchmarks (minutes each); `make bench BENCH_ARGS=--small` for a quick pass.
bench: setup
	@for b in $(filter-out bench/common.py bench/equivalence.py,$(wildcard bench/*.py)); do echo "== $$b"; $(PY) $$b $(BENCH_ARGS) || exit 1; done

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf data reports mlruns/mlflow.db mlruns/artifacts .pytest_cache
