# Two entry points (see README): `make run` sets up and runs the main job, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: setup run test bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The local CPU build of torch first: otherwise a dependency pulls the CUDA build (several GB).
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

run: setup
	$(BIN)/kakehashi ingest
	$(BIN)/kakehashi ask "MEDISOではどんな相談ができますか？"

# Lint and format first (seconds); then mypy beside the tests; the target fails if either does. `-n auto`
# asks tests/conftest.py how many test processes to run (two once the real model's vectors are kept on
# this machine, one on a first run and in CI); each takes a test file at a time, the seed-index files
# all going to one.
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@$(BIN)/mypy > $(VENV)/mypy.log 2>&1 & types=$$!; \
	$(BIN)/python -m pytest -q -n auto --dist loadgroup; tests=$$?; \
	wait $$types; typed=$$?; echo "mypy:"; cat $(VENV)/mypy.log; \
	test $$tests -eq 0 && test $$typed -eq 0

bench: setup
	$(BIN)/python -m pytest -q -m benchmark -s benchmarks
