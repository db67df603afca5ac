from __future__ import annotations

import os
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


def consumer_pythons() -> list:
    """The interpreters consumer tests run in: this one (newest transformers) and, from `make test`, one with
    transformers 4.57.6 and no hubheads. Under CI the second one is required."""
    params = [pytest.param(sys.executable, id="tf-current")]
    compat = os.environ.get(COMPAT_ENV)
    if compat:
        params.append(pytest.param(compat, id="tf-4.57"))
    elif os.environ.get("CI"):
        raise RuntimeError(f"CI must run the consumer tests under transformers 4.57.6 too: set {COMPAT_ENV}.")
    return params


MATRIX_ENV = "HUBHEADS_MATRIX_PYTHONS"


def release_pythons() -> list:
    """The interpreters of the release matrix (tests/test_versions.py): `consumer_pythons()`, and from `make test` one
    per further transformers release (`HUBHEADS_MATRIX_PYTHONS`, paths separated by `os.pathsep`: the floor
    release and the first 5.x). Under CI they are required."""
    params = consumer_pythons()
    extra = [path for path in os.environ.get(MATRIX_ENV, "").split(os.pathsep) if path]
    if not extra and os.environ.get("CI"):
        raise RuntimeError(f"CI must run the release matrix: set {MATRIX_ENV}.")
    return params + [pytest.param(path, id=Path(path).parent.parent.name.lstrip(".")) for path in extra]


def pytest_generate_tests(metafunc):
    if "consumer_python" in metafunc.fixturenames:
        metafunc.parametrize("consumer_python", consumer_pythons())
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
