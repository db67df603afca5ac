# Two entry points, each bootstrapping its own environment from scratch:
#   make demo   – fine-tune, tune, export and consume a real MiniLM classifier (results in hubheads-demo/)
#   make test   – lint + the whole test suite; every consumer test also under transformers 4.46.3, 4.57.6 and 5.0.0
PYTHON ?= python3
VENV := .venv
COMPAT := .venv-tf457
TORCH := torch==2.13.0
COMPAT_TRANSFORMERS := transformers==4.57.6
RELEASE_446 := 4.46.3
RELEASE_500 := 5.0.0
MATRIX := .venv-tf446 .venv-tf500
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: demo test envs lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and pinned: the CPU wheel on this machine, not the CUDA build an unpinned resolve pulls.
	$(VENV)/bin/pip install $(PIP_FLAGS) $(TORCH)
	$(VENV)/bin/pip install $(PIP_FLAGS) -e ".[dev,demo]"
	touch $@

# Consumers' machines that have not upgraded: transformers 4.57.6 (every consumer test), and for the release matrix
# (tests/test_versions.py) the floor pyproject claims and the first 5.x release. hubheads goes in without its author
# tooling (--no-deps keeps the release pinned): consumer tests block it, the pip-user test imports it.
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

demo: $(VENV)/.installed
	$(VENV)/bin/hubheads demo --out hubheads-demo --force

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src modeling hub_templates tests benchmarks
	$(VENV)/bin/ruff format --check src modeling hub_templates tests benchmarks
	$(VENV)/bin/mypy src modeling

# Every environment the tests use, built side by side (pip spends much of its time unpacking and copying torch).
envs: $(VENV)/.installed $(COMPAT)/.installed $(MATRIX:%=%/.installed)

test:
	$(MAKE) -j4 envs
	$(MAKE) lint
	# Two workers, one per core; a module's tests share a worker, so its module-scoped fixtures run once.
	HUBHEADS_COMPAT_PYTHON=$(CURDIR)/$(COMPAT)/bin/python \
	HUBHEADS_MATRIX_PYTHONS=$(subst $(eval) ,:,$(MATRIX:%=$(CURDIR)/%/bin/python)) \
	$(VENV)/bin/python -m pytest -n 2 --dist loadscope

# Throughput and memory ratios on the embedded MiniLM backbone (several minutes; not part of `make test`).
bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(COMPAT) $(MATRIX) hubheads-demo build dist src/*.egg-info
