# cmalign: two commands for learners, `make lab` and `make test` (see README).
#
# TORCH_SPEC picks the torch build installed before the package. The default,
# torch==2.13.0, is a CPU wheel on the project's CI machines (never a multi-GB
# CUDA download there). Elsewhere, e.g. with a GPU:  make lab TORCH_SPEC=torch
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PORT ?= 8888
NBMAKE_TIMEOUT ?= 600

BIN := $(VENV)/bin
STAMP := $(VENV)/.cmalign-installed

.PHONY: install lab test test-fast lint html bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when pyproject.toml changes, so both commands work offline
# once the environment exists.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[notebooks,test]"
	@touch $(STAMP)

install: $(STAMP)

# Jupyter refuses to start as root unless told; containers often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)

lab: install
	$(BIN)/jupyter lab --no-browser --port=$(PORT) --ServerApp.root_dir=notebooks $(ALLOW_ROOT)

# Unit tests including the slow ones (toy-model quality on a fresh seed, every
# lesson on a ViT-B/32-architecture checkpoint with the photos, a quick
# benchmark), then every lesson as it ships. Plain `pytest` skips the slow ones.
test: install
	$(BIN)/python -m pytest -m "slow or not slow"
	$(BIN)/python -m pytest --nbmake --nbmake-timeout=$(NBMAKE_TIMEOUT) notebooks/

# The quick loop while editing: fast unit tests only.
test-fast: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check cmalign tests notebooks

# Execute every lesson and write readable HTML to build/html/.
html: install
	$(BIN)/jupyter nbconvert --to html --execute --ExecutePreprocessor.timeout=$(NBMAKE_TIMEOUT) \
		--output-dir build/html notebooks/*.ipynb
	@echo "HTML written to build/html/"

bench: install
	$(BIN)/python -m benchmarks.run --out docs/results
