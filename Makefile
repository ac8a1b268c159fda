# cmalign: two commands for learners, `make lab` and `make test` (see README).
#
# TORCH_SPEC picks the torch build installed before the package. The default,
# torch==2.13.0, is a CPU wheel on the project's CI machines (never a multi-GB
# CUDA download there). Elsewhere, e.g. with a GPU:  make lab TORCH_SPEC=torch
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PORT ?= 8888
# Seconds one lesson cell may take (the slowest takes under two minutes). A rare hang
# (kernel and client both idle, a message lost between them; seen twice, cause
# unknown) ends at this limit and the lesson is run once more (--reruns 1).
NBMAKE_TIMEOUT ?= 300
RERUN := --reruns 1

# The newest transformers 4.x line, tested beside 5.x (see test-compat).
TF4_SPEC ?= transformers==4.57.6 tokenizers==0.22.2 huggingface_hub==0.36.2
TF4 := .venv-tf4

BIN := $(VENV)/bin
STAMP := $(VENV)/.cmalign-installed
TF4_STAMP := $(TF4)/.installed

.PHONY: install lab test test-fast test-compat lint html bench bench-scale

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when pyproject.toml changes, so both commands work offline
# once the environment exists.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[notebooks,test,scale]"
	@touch $(STAMP)

install: $(STAMP)

# Jupyter refuses to start as root unless told; containers often run as root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)

lab: install
	$(BIN)/jupyter lab --no-browser --port=$(PORT) --ServerApp.root_dir=notebooks $(ALLOW_ROOT)

# Lint, then one pytest run over the unit tests (the slow ones included: toy-model
# quality on a fresh seed, the lessons' code on the offline stand-in for
# openai/clip-vit-base-patch32, the commands the docs name, a quick benchmark) and every
# lesson as it ships, spread over $(WORKERS) processes (pytest-xdist, work stealing;
# one torch thread each, so two workers fill two cores without fighting), then the
# transformers-facing fast tests and lesson 01 again with transformers 4.x
# (COMPAT_TESTS). Plain `pytest` skips the slow ones.
# Measured times: README, "Tests".
WORKERS ?= 2
XDIST := -n $(WORKERS) --dist worksteal
ONE_THREAD := OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
test: install
	$(BIN)/ruff check cmalign tests benchmarks notebooks
	$(ONE_THREAD) $(BIN)/python -m pytest $(XDIST) -m "slow or not slow" \
		--nbmake --nbmake-timeout=$(NBMAKE_TIMEOUT) $(RERUN) tests notebooks
	$(MAKE) test-compat

# transformers 4.x, huggingface_hub 0.x and tokenizers 0.22 installed into
# $(TF4) and put in front of the main environment (PYTHONPATH), so everything
# else is the same: the fast tests and lesson 01 must pass on that stack too.
$(TF4_STAMP): $(STAMP) Makefile
	rm -rf $(TF4)
	$(BIN)/python -m pip install --quiet --no-deps --target $(TF4) $(TF4_SPEC)
	@touch $(TF4_STAMP)

# The tests of code that calls transformers or huggingface_hub (models, families,
# inputs, losses, training, evaluation, lessons' exercises). Left out: the Ray/FAISS
# tests and the commands' --help checks, whose transformers calls are the same
# functions tested here.
COMPAT_TESTS := tests --ignore-glob='tests/test_scale_*' --ignore=tests/test_commands.py

test-compat: $(TF4_STAMP)
	PYTHONPATH=$(abspath $(TF4)) $(BIN)/python -c "import transformers as t, huggingface_hub as h; \
		assert t.__version__.startswith('4.'), t.__version__; print('compat: transformers', t.__version__, 'huggingface_hub', h.__version__)"
	PYTHONPATH=$(abspath $(TF4)) $(ONE_THREAD) $(BIN)/python -m pytest -p no:cacheprovider -q \
		$(XDIST) --nbmake --nbmake-timeout=$(NBMAKE_TIMEOUT) $(RERUN) \
		$(COMPAT_TESTS) notebooks/01_clip_embeddings.ipynb

# The quick loop while editing: fast unit tests only.
test-fast: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check cmalign tests benchmarks notebooks

# Execute every lesson and write readable HTML to build/html/. Maths is
# rendered by a MathJax copied next to the pages (no CDN: works offline), and
# progress bars are switched off (TQDM_DISABLE) so the pages carry no noise.
MATHJAX_URL := mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe
html: install
	rm -rf build/html/mathjax && mkdir -p build/html
	cp -r "$$($(BIN)/python -c 'import jupyter_server_mathjax, pathlib; print(pathlib.Path(jupyter_server_mathjax.__file__).parent / "static")')" build/html/mathjax
	TQDM_DISABLE=1 $(BIN)/jupyter nbconvert --to html --execute \
		--ExecutePreprocessor.timeout=$(NBMAKE_TIMEOUT) \
		--HTMLExporter.mathjax_url="$(MATHJAX_URL)" \
		--output-dir build/html notebooks/*.ipynb
	@echo "HTML written to build/html/ (open build/html/01_clip_embeddings.html)"

bench: install
	$(BIN)/python -m benchmarks.run --out docs/results

bench-scale: install
	$(BIN)/python -m benchmarks.scale --out docs/results
