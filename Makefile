# The two commands of the README:
#   make run    create .venv, install, start the app on the embedded sample images
#   make test   create .venv with the dev extras, run the whole suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test lint bench samples clean

$(VENV)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps -e .
	touch $@

$(VENV)/.dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

test: $(VENV)/.dev
	$(PY) -m pytest -q

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
