# One entry point per thing a user does. Every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench lint minio clean

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

demo: setup
	bash infra/demo.sh

test: setup minio
	$(BIN)/ruff check dmp jobs dags tests bench
	$(BIN)/pytest -q tests

bench: setup
	$(BIN)/python -m bench.run

lint: setup
	$(BIN)/ruff check dmp jobs dags tests bench
	$(BIN)/ruff format --check dmp jobs dags tests bench

clean:
	rm -rf lakehouse demo_out bench_out spark-warehouse metastore_db derby.log
