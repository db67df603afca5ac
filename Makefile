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

# Consumers' machines that have not upgraded: transformers 4.57.6 and the first 5.x release, built by
# hubheads.release_envs (uv, from its cache by hard links: seconds), as `hubheads verify --transformers` builds them.
# hubheads goes in without its author tooling (--no-deps keeps the release pinned): consumer tests block it, the
# pip-user test imports it.
RELEASE_ENV := $(VENV)/bin/python -m hubheads.release_envs

$(COMPAT)/.complete: $(VENV)/.installed
	$(RELEASE_ENV) $(COMPAT) $(TORCH) $(COMPAT_TRANSFORMERS) --editable . --no-deps-editable

.venv-tf%/.complete: $(VENV)/.installed
	$(RELEASE_ENV) .venv-tf$* $(TORCH) transformers==$(RELEASE_$*) --editable . --no-deps-editable

# The floors: every dependency at the lowest release pyproject allows (floors.txt, as constraints; torch 2.4.1 is a
# PyPI build, downloaded once into uv's cache), hubheads installed with them. Consumer tests run here as on the other
# releases (transformers 4.46.1); the fast tests run here too.
$(FLOORS)/.complete: $(VENV)/.installed pyproject.toml floors.txt
	$(RELEASE_ENV) $(FLOORS) --constraints floors.txt --editable ".[demo,parquet]" pytest pytest-xdist hypothesis accelerate

demo: $(VENV)/.installed
	$(VENV)/bin/hubheads demo --out hubheads-demo --force

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src modeling hub_templates tests benchmarks
	$(VENV)/bin/ruff format --check src modeling hub_templates tests benchmarks
	$(VENV)/bin/mypy src modeling

# Every environment the tests use (the main one with pip, which takes this machine's CPU torch; the others with uv).
envs: $(VENV)/.installed $(COMPAT)/.complete $(MATRIX:%=%/.complete)

TEST_ENV := HUBHEADS_COMPAT_PYTHON=$(CURDIR)/$(COMPAT)/bin/python \
	HUBHEADS_MATRIX_PYTHONS=$(subst $(eval) ,:,$(MATRIX:%=$(CURDIR)/%/bin/python))

test:
	$(MAKE) envs
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
