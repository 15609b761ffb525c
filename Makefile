# One entry point per thing a user does. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast bench bench-overhead lint minio browser clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip check
	touch $(STAMP)

# MinIO (S3-compatible server) built from source once, cached under ~/go/bin.
minio:
	bash infra/minio.sh build

# Headless Chromium and its driver for the site's browser test (Debian packages; needs root).
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

demo: setup
	bash infra/demo.sh

# The Python install and the MinIO build are independent: do them side by side. The tests run on
# two pytest-xdist workers, one file per worker at a time (a file's fixtures stay in one process),
# in collection order: tests/conftest.py puts the two slow files first, so they start right away.
PYTEST_WORKERS ?= 2
test:
	$(MAKE) -j2 setup minio browser
	$(BIN)/ruff check dmp jobs dags tests bench
	$(BIN)/ruff format --check dmp jobs dags tests bench
	$(BIN)/pytest -q tests -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

# The inner loop: the unit and transform tests. Left to make test (which CI runs): tests/steps
# (each a step on a temporary lake), tests/integration and tests/bench, and the tests marked
# integration (real Airflow runs, spark-submit, the cluster, MinIO, a browser) or slow (purges,
# the documented examples through ingest, driver subprocesses).
test-fast:
	$(MAKE) -j2 setup minio
	$(BIN)/ruff check dmp jobs dags tests bench
	$(BIN)/pytest -q tests -m "not integration and not slow" --ignore=tests/steps --ignore=tests/integration \
		--ignore=tests/bench -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

# Pipeline vs DuckDB (BENCH_SIZES=1M,5M,20M for the full run), delivery vs plain boto3 on MinIO.
# Packs vs DuckDB need a built lake: python -m bench.bench_packs --lake L --date D (bench/README.md).
BENCH_SIZES ?= 200k
BENCH_DELIVERY_USERS ?= 200000
bench:
	$(MAKE) -j2 setup minio
	$(BIN)/python -m bench.run --sizes $(BENCH_SIZES)
	$(BIN)/python -m bench.bench_delivery --users $(BENCH_DELIVERY_USERS)

# The fixed cost per task: make demo's three DAGs through Airflow vs the same spark-submit jobs
# replayed in one process with one SparkSession, same data, results checked equal (~20 min).
bench-overhead: setup
	$(BIN)/python -m bench.bench_overhead

lint: setup
	$(BIN)/ruff check dmp jobs dags tests bench
	$(BIN)/ruff format --check dmp jobs dags tests bench

clean:
	rm -rf lakehouse demo_out bench_out spark-warehouse metastore_db derby.log
