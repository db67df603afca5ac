"""The dependency floors: pyproject's lower bounds are exactly what `make test` installs into .venv-floors
(floors.txt), and what hubheads does on a floor it cannot support is a clear error, not a traceback.

`make test` runs every fast test in .venv-floors too; the tests here that depend on the environment run in one or the
other, and say so.
"""

from __future__ import annotations

import sys
from pathlib import Path

import huggingface_hub
import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from hubheads.push import MIN_HUB_FOR_PUSH, push_folder

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _lower_bounds() -> dict[str, str]:
    bounds = {}
    for line in PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["parquet"]:
        requirement = Requirement(line)
        (bound,) = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        bounds[canonicalize_name(requirement.name)] = bound
    return bounds


def test_every_dependency_has_a_lower_bound_and_floors_txt_pins_exactly_it():
    pins = {}
    for line in (ROOT / "floors.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(requirement.name)] = spec.version
    bounds = _lower_bounds()
    assert pins.keys() == bounds.keys()
    assert {name: Version(pin) for name, pin in pins.items()} == {name: Version(b) for name, b in bounds.items()}


def test_requires_python_is_what_ci_runs():
    supported = SpecifierSet(PYPROJECT["requires-python"])
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert running in supported
    assert f"{sys.version_info.major}.{sys.version_info.minor - 1}" not in supported, (
        f"requires-python {supported} admits a Python older than {running}, which no CI job runs"
    )


@pytest.mark.skipif(
    Version(huggingface_hub.__version__) >= Version(MIN_HUB_FOR_PUSH),
    reason="runs in .venv-floors (huggingface_hub 0.25); tests/test_push.py covers push on 2.x",
)
def test_push_on_an_old_huggingface_hub_says_what_to_install(tmp_path):
    with pytest.raises(ImportError, match=rf"push needs huggingface_hub>={MIN_HUB_FOR_PUSH}.*pip install -U"):
        push_folder(tmp_path, "org/name", smoke=False)
    from hubheads.errors import MissingDependencyError
    from hubheads_cli import main

    assert main(["push", str(tmp_path), "--repo-id", "org/name", "--no-smoke"]) == MissingDependencyError.exit_code
