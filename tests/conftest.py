from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# One torch thread per process: `make test` runs two workers on two cores, and each starts consumer processes. With
# torch's default (a thread per core) those processes spin against each other on the tiny models' many small ops:
# the stock-parity run of one release took 262 s instead of 21 s. Set before any test module imports torch;
# subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

COMPAT_ENV = "HUBHEADS_COMPAT_PYTHON"
MATRIX_ENV = "HUBHEADS_MATRIX_PYTHONS"


def release_pythons() -> list:
    """The interpreters every consumer test runs in: this one (newest transformers) and, from `make test`, one per
    older release: 4.57.6 (`HUBHEADS_COMPAT_PYTHON`), the floors (4.46.1) and the first 5.x
    (`HUBHEADS_MATRIX_PYTHONS`, paths separated by `os.pathsep`). Under CI they are required."""
    params = [pytest.param(sys.executable, id="tf-current")]
    compat = os.environ.get(COMPAT_ENV)
    extra = [path for path in os.environ.get(MATRIX_ENV, "").split(os.pathsep) if path]
    if os.environ.get("CI") and not (compat and extra):
        raise RuntimeError(f"CI must run the consumer tests under every release: set {COMPAT_ENV} and {MATRIX_ENV}.")
    if compat:
        params.append(pytest.param(compat, id="tf-4.57"))
    return params + [pytest.param(path, id=Path(path).parent.parent.name.lstrip(".")) for path in extra]


@functools.cache
def transformers_version(python: str) -> str:
    """The transformers release the interpreter `python` has (asked once per interpreter and session)."""
    code = "import transformers; print(transformers.__version__)"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def pytest_generate_tests(metafunc):
    if "consumer_python" in metafunc.fixturenames:
        metafunc.parametrize("consumer_python", release_pythons())
    if "release_python" in metafunc.fixturenames:
        metafunc.parametrize("release_python", release_pythons())


@pytest.fixture
def hf_home(tmp_path: Path) -> Path:
    """An empty HF_HOME for one consumer: its hub/ folder is the offline cache."""
    path = tmp_path / "hf_home"
    (path / "hub").mkdir(parents=True)
    return path


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """huggingface_hub with its HTTP transport replaced by a `fakehub.FakeHub`; the previous client is restored
    afterwards (tests/fakehub.py says what is faked and why)."""
    from fakehub import fake_hub

    with fake_hub(monkeypatch, tmp_path) as fake:
        yield fake


def pytest_collection_modifyitems(items):
    """A test that runs in a release's interpreter is a consumer test, marked or not (the floors' run of the fast
    tests, `-m "not consumer and not slow"`, leaves them to the main run, which runs them under every release)."""
    for item in items:
        if {"consumer_python", "release_python"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.consumer)
