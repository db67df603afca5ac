"""The Hub as consumers meet it, offline.

No machine here reaches the Hub, but `transformers` loads a repo id from the local cache when `HF_HUB_OFFLINE=1`.
`install_in_offline_cache` lays a repo folder out exactly as `huggingface_hub` downloads it
(`models--org--name/blobs`, `snapshots/<commit>/`, `refs/main`), and `run_stock_pipeline` runs the stock
`pipeline("text-classification", model=repo_id, trust_remote_code=True)` in a new interpreter with `hubheads`
blocked, so the code that runs is the repo's own copy, as on a consumer's machine. `verify`'s smoke run and the tests
use both; nothing here sends a request.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import constants
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import HFValidationError, validate_repo_id

from hubheads.errors import EnvironmentFailedError, InvalidInputError, SourceNotFoundError
from hubheads.repo_files import sha256_file


def check_repo_folder(folder: str | os.PathLike, *, needs_config: bool = True) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceNotFoundError(f"{folder} is not a folder; pass an exported repo folder.")
    if needs_config and not (folder / "config.json").is_file():
        raise SourceNotFoundError(f"{folder} has no config.json; pass an exported repo folder.")
    return folder


def check_repo_id(repo_id: str, name: str = "repo_id", *, canonical: bool = False) -> None:
    """Raise a `ValueError` naming `name` unless `repo_id` is `"org/name"` (or, with `canonical=True`, also a
    canonical id without an org, such as `distilbert-base-uncased-finetuned-sst-2-english`) and follows the Hub's
    rules."""
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if not (len(parts) == 2 or (canonical and len(parts) == 1)) or not all(parts):
        shape = "'org/name' or a canonical id like 'gpt2'" if canonical else "'org/name'"
        raise InvalidInputError(f"{name} must look like {shape}, got {repo_id!r}.")
    try:
        validate_repo_id(repo_id)  # the Hub's rules on characters and length
    except HFValidationError as error:
        raise InvalidInputError(f"{name} {repo_id!r} is not a valid Hub repo id: {error}") from error


def install_in_offline_cache(
    folder: str | os.PathLike, repo_id: str, *, cache_dir: str | os.PathLike | None = None, revision: str = "main"
) -> str:
    """Put `folder` into a Hugging Face Hub cache as repo `repo_id` at `revision`; return the commit id.

    The commit id is a hash of the folder's content (40 hex digits, like a git commit), so the same export gets the
    same id. Files become blobs named by their sha256, linked from `snapshots/<commit>/`, as `hf_hub_download`
    leaves them. `cache_dir` defaults to `huggingface_hub`'s cache (`$HF_HOME/hub`).

    The Hub's real shapes are accepted: canonical ids without an org
    (`distilbert-base-uncased-finetuned-sst-2-english`), folders without config.json (a code-only repo such as
    `Alibaba-NLP/new-impl`, which another repo's `auto_map` points at), and any revision name, a pull request's
    `refs/pr/3` included (stored as `refs/refs/pr/3`, as `huggingface_hub` stores it).
    """
    folder = check_repo_folder(folder, needs_config=False)
    check_repo_id(repo_id, canonical=True)
    if not isinstance(revision, str) or not revision or revision.startswith("/") or ".." in revision.split("/"):
        raise InvalidInputError(
            f"revision must be a branch, tag or ref such as 'main' or 'refs/pr/3', got {revision!r}."
        )
    repo_dir = Path(cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.relative_to(folder).parts)
    hashes = {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}
    commit = hashlib.sha1(json.dumps(hashes, sort_keys=True).encode()).hexdigest()
    snapshot = repo_dir / "snapshots" / commit
    for path in files:
        relative = path.relative_to(folder).as_posix()
        blob = repo_dir / "blobs" / hashes[relative]
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            shutil.copyfile(path, blob)
        link = snapshot / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        try:
            link.symlink_to(os.path.relpath(blob, link.parent))
        except OSError:  # file systems without symlinks: huggingface_hub copies too
            shutil.copyfile(blob, link)
    ref = repo_dir / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit)
    return commit


# Runs in the consumer's interpreter: only the standard library and transformers, hubheads blocked.
_CONSUMER_SCRIPT = r"""
import json, sys, warnings
sys.modules["hubheads"] = None  # the code that runs must be the repo's copy, not the installed package
requests = json.load(sys.stdin)
import torch
import transformers
from transformers import pipeline


def suspect_buffers(model):
    # Non-persistent buffers that hold the fill of uninitialised memory (NaN, the largest integer): the load never
    # set them (hubheads.output_checks.suspect_buffers, for a process without hubheads).
    persistent, found = set(model.state_dict()), []
    for name, buffer in model.named_buffers():
        if name in persistent or buffer.numel() == 0:
            continue
        if buffer.is_floating_point():
            bad = not bool(torch.isfinite(buffer).all())
        else:
            bad = buffer.dtype == torch.int64 and bool((buffer == torch.iinfo(torch.int64).max).any())
        if bad:
            owner = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            found.append(f"{name} ({type(owner).__qualname__} in {type(owner).__module__})")
    return found


def run(request, output):
    kwargs, fill = request["pipeline_kwargs"], request.get("fill_uninitialized", False)
    if fill:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        clf = pipeline("text-classification", model=request["repo_id"], trust_remote_code=True, **kwargs)
    finally:
        torch.use_deterministic_algorithms(False)
    output.update(pipeline_class=type(clf).__name__, pipeline_module=type(clf).__module__)
    output["dtype"] = str(next(clf.model.parameters()).dtype).replace("torch.", "")
    if fill:
        output["suspect_buffers"] = suspect_buffers(clf.model)
    if request.get("quantize") == "int8":  # the card's int8 call
        clf.model = torch.ao.quantization.quantize_dynamic(clf.model, {torch.nn.Linear}, dtype=torch.qint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        output["results"] = [clf(call["inputs"], **call.get("kwargs", {})) for call in request["calls"]]
    output["warnings"] = [f"{type(w.message).__name__}: {w.message}" for w in caught]


outputs = []
for request in requests:
    output = {"transformers_version": transformers.__version__}
    try:
        run(request, output)
    except Exception as error:
        if not request.get("catch_errors"):
            raise
        lines = [line for line in str(error).splitlines() if line.strip()] or [""]
        output["error"] = f"{type(error).__name__}: {lines[0][:300]}"
        output.pop("results", None)
    outputs.append(output)
json.dump(outputs, sys.stdout)
"""


#: What a consumer process keeps of this one's environment: locale, time zone, temporary folder, thread counts and
#: PATH. Everything else (tokens, cloud credentials, proxies, HF_* and TRANSFORMERS_* settings, PYTHONPATH) stays out.
INHERITED_ENVIRONMENT = ("PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "OMP_NUM_THREADS")


def offline_environment(hf_home: str | os.PathLike) -> dict[str, str]:
    """The environment of a fresh consumer process, as on a new machine that has only the cache in `hf_home`.

    It keeps only `INHERITED_ENVIRONMENT` (and `LC_*`) of this process's environment, so no token or credential
    reaches code the process runs; `HOME` is `hf_home/home` (created, empty unless a run wrote to it), so neither
    `~/.cache/huggingface/token` nor any other file of the user's home is found there; `HF_HOME` is `hf_home` (its
    `hub/` folder is the cache), the Hub is offline, and user site-packages are off: the process sees only what its
    own interpreter has installed. Not a sandbox: the process can still read any file its user can, by absolute path.
    """
    env = {key: value for key, value in os.environ.items() if key in INHERITED_ENVIRONMENT or key.startswith("LC_")}
    home = Path(hf_home) / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        USERPROFILE=str(home),
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONNOUSERSITE="1",
    )
    return env


def run_stock_pipeline(
    repo_id: str,
    hf_home: str | os.PathLike,
    calls: Iterable[Mapping[str, Any]],
    *,
    python: str | None = None,
    pipeline_kwargs: Mapping[str, Any] | None = None,
    timeout: float = 600,
    fill_uninitialized: bool = False,
) -> dict[str, Any]:
    """Run the stock `pipeline(..., trust_remote_code=True)` on `repo_id` in a fresh, offline interpreter.

    Args:
        repo_id (`str`): the repo as consumers name it (installed in `hf_home` with `install_in_offline_cache`).
        hf_home (`str` or `os.PathLike`): the `HF_HOME` of the consumer; its `hub/` folder is the cache.
        calls (iterable of `dict`): each `{"inputs": ..., "kwargs": {...}}`, one pipeline call.
        python (`str`, *optional*): the consumer's interpreter (e.g. one with another transformers version);
            defaults to this one.
        pipeline_kwargs (`dict`, *optional*): extra arguments of `pipeline(...)`.
        fill_uninitialized (`bool`, *optional*, defaults to `False`): load with torch's fill of uninitialised
            memory (NaN, the largest integer), so a model that reads memory its load never set fails every time; the
            output then also has `suspect_buffers` (the non-persistent buffers holding the fill).

    Returns:
        `dict` with `results` (one output per call), `warnings` (those the calls raised, `"Category: message"`),
        `transformers_version`, `pipeline_class`, `pipeline_module`, `dtype` (the model's, e.g. `"bfloat16"`).
    """
    request = {
        "repo_id": repo_id,
        "calls": list(calls),
        "pipeline_kwargs": dict(pipeline_kwargs or {}),
        "fill_uninitialized": fill_uninitialized,
    }
    (output,) = run_stock_pipelines(hf_home, [request], python=python, timeout=timeout)
    return output


def run_stock_pipelines(
    hf_home: str | os.PathLike,
    requests: Iterable[Mapping[str, Any]],
    *,
    python: str | None = None,
    timeout: float = 600,
) -> list[dict[str, Any]]:
    """`run_stock_pipeline` for several repos in one fresh interpreter (one start-up, one import of transformers).

    Args:
        hf_home (`str` or `os.PathLike`): the `HF_HOME` of the consumer; its `hub/` folder is the cache.
        requests (iterable of `dict`): each `{"repo_id": ..., "calls": [...], "pipeline_kwargs": {...}}`, as the
            arguments of `run_stock_pipeline`, and optionally `"fill_uninitialized": True`, `"catch_errors": True`
            (a load or call that raises gives the output an `error`, the exception's first line, instead of
            `results`) and `"quantize": "int8"` (the card's int8 call: the loaded model's `nn.Linear` layers to
            dynamic int8).
        python (`str`, *optional*): the consumer's interpreter; defaults to this one.

    Returns:
        `list[dict]`: one output per request, as `run_stock_pipeline` returns it.
    """
    payload = [
        {
            "repo_id": r["repo_id"],
            "calls": list(r["calls"]),
            "pipeline_kwargs": dict(r.get("pipeline_kwargs") or {}),
            "fill_uninitialized": bool(r.get("fill_uninitialized", False)),
            "catch_errors": bool(r.get("catch_errors", False)),
            "quantize": r.get("quantize"),
        }
        for r in requests
    ]
    arguments = ["-c", _CONSUMER_SCRIPT]
    return json.loads(run_consumer_process(arguments, hf_home, payload=payload, python=python, timeout=timeout).stdout)


def run_consumer_process(
    arguments: Sequence[str],
    hf_home: str | os.PathLike,
    *,
    payload: Any = None,
    python: str | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """`python ARGUMENTS` in a fresh consumer process (`offline_environment(hf_home)`), with `payload` as JSON on its
    standard input; an `EnvironmentFailedError` with the tail of its error output when it exits non-zero.

    Args:
        arguments (sequence of `str`): the interpreter's arguments, e.g. `["-c", script]` or a script's path.
        hf_home (`str` or `os.PathLike`): the `HF_HOME` of the consumer; its `hub/` folder is the cache.
        payload (*optional*): sent as JSON on standard input (nothing is sent when `None`).
        python (`str`, *optional*): the consumer's interpreter; defaults to this one.
        timeout (`float`, *optional*, defaults to 600): seconds before the process is killed.
    """
    completed = subprocess.run(
        [python or sys.executable, *arguments],
        input=None if payload is None else json.dumps(payload),
        capture_output=True,
        text=True,
        env=offline_environment(hf_home),
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise EnvironmentFailedError(
            f"The consumer process failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}"
        )
    return completed


__all__ = [
    "check_repo_folder",
    "check_repo_id",
    "install_in_offline_cache",
    "offline_environment",
    "run_consumer_process",
    "run_stock_pipeline",
    "run_stock_pipelines",
]
