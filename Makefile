# Membergate: every target sets itself up from a clean clone (.venv is created on demand).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
PORT ?= 3000

.PHONY: help setup test demo dev bench build lint clean

help:
	@echo "make demo   - start the local stack and tell the whole member story"
	@echo "make test   - run the test suite"
	@echo "make dev    - run the local stack in the foreground (PORT=$(PORT))"
	@echo "make bench  - measure the performance budgets"
	@echo "make build  - build the Lambda artefacts (python3.12, arm64) into .aws-sam/build"
	@echo "make lint   - cfn-lint template.yaml"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python -m infra.local.demo

dev: $(STAMP)
	PORT=$(PORT) $(BIN)/python -m infra.local.stack

bench: $(STAMP)
	$(BIN)/python -m infra.bench

lint: $(STAMP)
	$(BIN)/cfn-lint template.yaml

clean:
	rm -rf $(VENV) .aws-sam dist build *.egg-info
