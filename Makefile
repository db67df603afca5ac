# Two entry points, each bootstrapping its own environment from scratch:
#   make demo   – fine-tune, tune, export and consume a real MiniLM classifier (results in hubheads-demo/)
#   make test   – lint + the whole test suite; every consumer test also under transformers 4.46.1, 4.57.6 and 5.0.0;
#                 the fast tests also against every dependency's lowest allowed release (floors.txt)
PYTHON ?= python3
VENV := .venv
COMPAT := .venv-tf457
TORCH := torch==2.13.0
COMPAT_TRANSFORMERS := transformers==4.57.6
RELEASE_500 := 5.0.0
FLOORS := .venv-floors
MATRIX := $(FLOORS) .venv-tf500
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test envs lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU wheel on this machine, not the CUDA build an unpinned resolve pulls.
	$(VENV)/bin/pip install $(PIP_FLAGS) $(TORCH)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[dev,demo]"
	touch $@

# Consumers' machines that have not upgraded: transformers 4.57.6 and the first 5.x release. hubheads goes in without
# its author tooling (--no-deps keeps the release pinned): consumer tests block it, the pip-user test imports it.
$(COMPAT)/.installed:
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/pip install $(PIP_FLAGS) $(TORCH) $(COMPAT_TRANSFORMERS)
	$(COMPAT)/bin/pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

.venv-tf%/.installed:
	$(PYTHON) -m venv .venv-tf$*
	.venv-tf$*/bin/pip install $(PIP_FLAGS) $(TORCH) transformers==$(RELEASE_$*)
	.venv-tf$*/bin/pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

# The floors: every dependency at the lowest release pyproject allows (floors.txt, as constraints), hubheads installed
# with them. Consumer tests run here as on the other releases (transformers 4.46.1); the fast tests run here too.
$(FLOORS)/.installed: pyproject.toml floors.txt
	$(PYTHON) -m venv $(FLOORS)
	$(FLOORS)/bin/pip install $(PIP_FLAGS) -c floors.txt -e ".[demo,parquet]" pytest pytest-xdist hypothesis accelerate
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/hubheads demo --out hubheads-demo --force

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src modeling hub_templates tests benchmarks
	$(VENV)/bin/ruff format --check src modeling hub_templates tests benchmarks
	$(VENV)/bin/mypy src modeling

# Every environment the tests use, built side by side (pip spends much of its time unpacking and copying torch).
envs: $(VENV)/.installed $(COMPAT)/.installed $(MATRIX:%=%/.installed)

TEST_ENV := HUBHEADS_COMPAT_PYTHON=$(CURDIR)/$(COMPAT)/bin/python \
	HUBHEADS_MATRIX_PYTHONS=$(subst $(eval) ,:,$(MATRIX:%=$(CURDIR)/%/bin/python))

test:
	$(MAKE) -j4 envs
	$(MAKE) lint
	# Two workers, one per core; a module's tests share a worker, so its module-scoped fixtures run once.
	$(TEST_ENV) $(VENV)/bin/python -m pytest -n 2 --dist loadscope
	# The fast tests against the dependency floors (about a minute).
	$(TEST_ENV) $(FLOORS)/bin/python -m pytest -n 2 --dist loadscope -m "not consumer and not slow" -p no:cacheprovider

# Throughput and memory ratios on the embedded MiniLM backbone (several minutes; not part of `make test`).
bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(COMPAT) $(MATRIX) hubheads-demo build dist src/*.egg-info
