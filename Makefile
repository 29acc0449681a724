# The two commands of the README:
#   make run    create .venv, install, start the app on the embedded sample images
#   make test   create .venv with the dev extras, run the suite but the real-browser and slow tests
#   (make test-all runs every test; .ci/run runs make test, then make test-more: the browser and slow ones)
# `make run` listens on 127.0.0.1 only; ADDRESS=0.0.0.0 opens it to the network, and
# ALLOW_CODE=1 lets the sidebar run your own pipeline code (anyone who can open the page
# can then run commands as you): see docs/security.md.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
ADDRESS ?= 127.0.0.1
ALLOW_CODE ?=

.PHONY: run test test-more test-all lint bench samples clean

$(VENV)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed  ## the dashboard (python -m dinodiag app: address, upload limit as flags)
	$(PY) -m dinodiag app --port $(PORT) --address $(ADDRESS) \
		$(if $(filter 1 yes true,$(ALLOW_CODE)),--allow-browser-code)

# One pytest worker per core, one torch thread per worker (more would oversubscribe the cores);
# worksteal: a worker that runs out of tests takes queued ones from the other (the tests last
# from milliseconds to half a minute, so a fixed split leaves one worker waiting at the end).
TEST_WORKERS ?= auto
PYTEST := OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

test: $(VENV)/.dev  ## every test but the real-browser and slow ones (pyproject's markers)
	$(PYTEST) -m "not slow and not browser"

test-more: $(VENV)/.dev  ## what make test leaves out: real-browser tests and the slow ones (CI)
	$(PYTEST) -m "slow or browser"

test-all: $(VENV)/.dev
	$(PYTEST)

lint: $(VENV)/.dev  ## ruff (lint + format check) and the import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

bench: $(VENV)/.installed  ## every benchmark -> bench/results/*.json (several minutes)
	$(PY) bench/bench_augment.py
	$(PY) bench/bench_loader.py
	$(PY) bench/bench_gpu_augment.py
	$(PY) bench/bench_app.py
	$(PY) bench/bench_train.py

samples: $(VENV)/.installed
	$(PY) -m dinodiag.data.samples

clean:
	rm -rf $(VENV) artifacts .pytest_cache
