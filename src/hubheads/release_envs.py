"""Isolated Python environments with one transformers release each: where `hubheads verify --transformers` runs a
repo as its consumers would, and where `make test` runs the consumer tests.

[`build_environment`] creates a virtual environment and installs requirements into it with `uv` where it is
available (it installs from its cache by hard links, so a second environment of the same packages takes seconds),
else with `venv` and `pip`. The find-links folders of pip's configuration are passed on to `uv`, so both install the
same files (a machine whose CPU build of torch lies in such a folder gets it either way). An environment is built
under a lock and marked complete last (`.complete`, with what was asked for): an interrupted build is rebuilt, and a
concurrent one waits, so no run ever uses a half-installed environment. [`release_environment`] is the cached one of a
(torch, transformers) pair under the user's cache folder (`HUBHEADS_CACHE`, else `~/.cache/hubheads`).

Run as a module, it builds one environment (what the Makefile does):

    python -m hubheads.release_envs .venv-tf457 torch==2.13.0 transformers==4.57.6 --editable . --no-deps-editable
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hubheads.errors import EnvironmentFailedError
from hubheads_cli.defaults import DEFAULT_RELEASES  # noqa: F401  (shown by `hubheads verify --help`)

#: The file a complete environment holds: what was asked for, and how it was built.
COMPLETE = ".complete"


@dataclass(frozen=True)
class Environment:
    """A built environment.

    Args:
        path (`Path`): its folder.
        python (`Path`): its interpreter.
        builder (`str`): `"uv"` or `"pip"`.
        seconds (`float`): how long this call took (building, or finding it built).
        built (`bool`): whether this call built it (`False`: it was there).
    """

    path: Path
    python: Path
    builder: str
    seconds: float
    built: bool


def cache_folder() -> Path:
    """Where cached environments live: `HUBHEADS_CACHE`, else `$XDG_CACHE_HOME/hubheads`, else `~/.cache/hubheads`."""
    if os.environ.get("HUBHEADS_CACHE"):
        return Path(os.environ["HUBHEADS_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "hubheads"


def uv_command() -> list[str] | None:
    """How to run `uv`: the executable on PATH, or this interpreter's `uv` package; `None` without either."""
    found = shutil.which("uv")
    if found:
        return [found]
    if importlib.util.find_spec("uv") is not None:
        from uv import find_uv_bin  # type: ignore[import-not-found]

        return [find_uv_bin()]
    return None


def pip_find_links() -> list[str]:
    """The find-links folders of pip's configuration (files and environment), which `uv` does not read by itself."""
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    )
    links: list[str] = []
    for line in completed.stdout.splitlines():
        match = re.match(r"[^=]*find-links='(.*)'$", line.strip())
        if match:
            links += [link for link in match.group(1).split() if link not in links]
    return links


def _python_of(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path.lock` (a build in another process waits); no lock where `fcntl` is missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _install(builder: list[str] | None, python: Path, arguments: list[str]) -> None:
    if builder is None:
        command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *arguments]
    else:
        links = [item for link in pip_find_links() for item in ("--find-links", link)]
        command = [*builder, "pip", "install", "--quiet", "--python", str(python), *links, *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if completed.returncode != 0:
        raise EnvironmentFailedError(
            f"Installing {' '.join(arguments)} failed ({' '.join(command[:3])}):\n{completed.stderr.strip()[-3000:]}"
        )


def build_environment(
    path: str | os.PathLike,
    requirements: Sequence[str],
    *,
    constraints: str | os.PathLike | None = None,
    editable: str | os.PathLike | None = None,
    no_deps_editable: bool = False,
) -> Environment:
    """The environment at `path` with `requirements` installed, built unless a complete one with the same request is
    there already.

    Args:
        path (`str` or `os.PathLike`): the environment's folder.
        requirements (`Sequence[str]`): pip requirement strings, e.g. `["torch==2.13.0", "transformers==4.57.6"]`.
        constraints (`str` or `os.PathLike`, *optional*): a constraints file for every install.
        editable (`str` or `os.PathLike`, *optional*): a project folder (with extras: `".[demo]"`) installed in
            editable mode after them.
        no_deps_editable (`bool`, *optional*, defaults to `False`): install `editable` without its dependencies, so
            the requirements stay exactly as asked (a consumer's environment with hubheads added for the tests).
    """
    start = time.perf_counter()
    path = Path(path).absolute()
    project = re.sub(r"\[.*\]$", "", str(editable)) if editable is not None else None
    request = "\n".join(
        [
            *requirements,
            f"constraints={constraints} {_digest(constraints)}",
            f"editable={editable} {_digest(Path(project) / 'pyproject.toml' if project else None)}",
            f"no_deps={no_deps_editable}",
        ]
    )
    uv = uv_command()
    builder = "uv" if uv else "pip"
    with _locked(path):
        marker = path / COMPLETE
        if marker.is_file() and marker.read_text().split("\n", 1)[-1] == request:
            return Environment(path, _python_of(path), marker.read_text().split("\n", 1)[0], _since(start), False)
        if path.exists():  # an interrupted build, or another request: it has no (matching) marker
            shutil.rmtree(path)
        if uv:
            subprocess.run([*uv, "venv", "--quiet", "--python", sys.executable, str(path)], check=True)
        else:
            subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        python = _python_of(path)
        constrained = ["--constraint", str(constraints)] if constraints else []
        _install(uv, python, [*constrained, *requirements])
        if editable is not None:
            no_deps = ["--no-deps"] if no_deps_editable else []
            folder, extras = re.fullmatch(r"(.*?)(\[[^\]]*\])?", str(editable)).groups()  # type: ignore[union-attr]
            target = f"{Path(folder).absolute()}{extras or ''}"
            _install(uv, python, [*constrained, *no_deps, "--editable", target])
        marker.write_text(f"{builder}\n{request}")  # last: only a complete environment has it
    return Environment(path, _python_of(path), builder, _since(start), True)


def _digest(path: str | os.PathLike | None) -> str:
    """The sha256 of a file that decides what an environment holds (so that an edit rebuilds it), or `""`."""
    if path is None or not Path(path).is_file():
        return ""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _since(start: float) -> float:
    return time.perf_counter() - start


def torch_requirement() -> str:
    """`torch==<version>` of this interpreter's torch, without a local build tag (`2.13.0+cpu` -> `2.13.0`)."""
    import torch

    return f"torch=={torch.__version__.split('+')[0]}"


def newest_release(package: str = "transformers") -> str:
    """The newest release of `package` on the package index pip is configured with (`pip index versions`)."""
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", package, "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(rf"^{re.escape(package)} \(([^)]+)\)", completed.stdout, flags=re.M)
    if not match:
        raise EnvironmentFailedError(
            f"Could not find the newest {package} release on the package index: {completed.stderr.strip()[-500:]}"
        )
    return match.group(1)


def release_environment(release: str, torch: str | None = None) -> Environment:
    """The cached environment (under `cache_folder()`) with `transformers==release` and the author's torch (or
    `torch`, a requirement string), without hubheads."""
    torch = torch or torch_requirement()
    folder = cache_folder() / "envs" / f"{torch.replace('==', '-')}-transformers-{release}"
    return build_environment(folder, [torch, f"transformers=={release}"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hubheads.release_envs", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="the environment's folder")
    parser.add_argument("requirements", nargs="*", help="pip requirement strings")
    parser.add_argument("--constraints", help="a pip constraints file for every install")
    parser.add_argument("--editable", help="a project folder to install in editable mode")
    parser.add_argument("--no-deps-editable", action="store_true", help="install --editable without dependencies")
    args = parser.parse_intermixed_args(argv)
    env = build_environment(
        args.path,
        args.requirements,
        constraints=args.constraints,
        editable=args.editable,
        no_deps_editable=args.no_deps_editable,
    )
    state = "built" if env.built else "already built"
    print(f"{env.path}: {state} with {env.builder} in {env.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "DEFAULT_RELEASES",
    "Environment",
    "build_environment",
    "cache_folder",
    "newest_release",
    "release_environment",
    "torch_requirement",
    "uv_command",
]
