# spinecoach — two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYX := $(wildcard cython_core/*.pyx cython_core/*.pxd)

.PHONY: run test soak bench fixtures lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Build dependencies are installed into the venv once so rebuilding the kernels is quick
# (no isolated build environment on every change).
$(STAMP): $(PY) pyproject.toml setup.py $(PYX)
	$(PY) -m pip install --quiet "setuptools>=77" wheel "Cython>=3.0" "numpy>=2.0"
	$(PY) -m pip install --quiet --no-build-isolation -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/spinecoach

test: $(STAMP)
	$(PY) -m pytest -q

soak: $(STAMP)
	$(PY) -m pytest -q -m soak

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]" --no-build-isolation
	$(PY) benchmarks/core.py

fixtures: $(STAMP)
	$(PY) tests/fixtures/make_fixtures.py

lint: $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev]" --no-build-isolation
	$(VENV)/bin/ruff check device drivers tests benchmarks
	$(VENV)/bin/mypy device drivers

clean:
	rm -rf $(VENV) build *.egg-info cython_core/*.c cython_core/*.so
