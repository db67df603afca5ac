"""The Hub as consumers meet it, offline: the cache layout, and the stock pipeline run in a fresh process.

No machine here reaches the Hub, but `transformers` loads a repo id from the local cache when `HF_HUB_OFFLINE=1`.
`install_in_offline_cache` lays an exported folder out exactly as `huggingface_hub` downloads it
(`models--org--name/blobs`, `snapshots/<commit>/`, `refs/main`), and `run_stock_pipeline` runs the stock
`pipeline("text-classification", model=repo_id, trust_remote_code=True)` in a new interpreter with `hubheads`
blocked, so the code that runs is the repo's own copy, as on a consumer's machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import constants
from huggingface_hub.file_download import repo_folder_name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def install_in_offline_cache(
    folder: str | os.PathLike, repo_id: str, *, cache_dir: str | os.PathLike | None = None, revision: str = "main"
) -> str:
    """Put `folder` into a Hugging Face Hub cache as repo `repo_id` at `revision`; return the commit id.

    The commit id is a hash of the folder's content (40 hex digits, like a git commit), so the same export gets the
    same id. Files become blobs named by their sha256, linked from `snapshots/<commit>/`, as `hf_hub_download`
    leaves them. `cache_dir` defaults to `huggingface_hub`'s cache (`$HF_HOME/hub`).
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json; pass an exported repo folder.")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"repo_id must look like 'org/name', got {repo_id!r}.")
    repo_dir = Path(cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.relative_to(folder).parts)
    hashes = {p.relative_to(folder).as_posix(): _sha256(p) for p in files}
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
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / revision).write_text(commit)
    return commit


# Runs in the consumer's interpreter: only the standard library and transformers, hubheads blocked.
_CONSUMER_SCRIPT = r"""
import json, sys
sys.modules["hubheads"] = None  # the code that runs must be the repo's copy, not the installed package
request = json.load(sys.stdin)
import transformers
from transformers import pipeline
clf = pipeline("text-classification", model=request["repo_id"], trust_remote_code=True, **request["pipeline_kwargs"])
results = [clf(call["inputs"], **call.get("kwargs", {})) for call in request["calls"]]
json.dump({
    "transformers_version": transformers.__version__,
    "pipeline_class": type(clf).__name__,
    "pipeline_module": type(clf).__module__,
    "results": results,
}, sys.stdout)
"""


def run_stock_pipeline(
    repo_id: str,
    hf_home: str | os.PathLike,
    calls: Iterable[Mapping[str, Any]],
    *,
    python: str | None = None,
    pipeline_kwargs: Mapping[str, Any] | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """Run the stock `pipeline(..., trust_remote_code=True)` on `repo_id` in a fresh, offline interpreter.

    Args:
        repo_id (`str`): the repo as consumers name it (installed in `hf_home` with `install_in_offline_cache`).
        hf_home (`str` or `os.PathLike`): the `HF_HOME` of the consumer; its `hub/` folder is the cache.
        calls (iterable of `dict`): each `{"inputs": ..., "kwargs": {...}}`, one pipeline call.
        python (`str`, *optional*): the consumer's interpreter (e.g. one with another transformers version);
            defaults to this one.
        pipeline_kwargs (`dict`, *optional*): extra arguments of `pipeline(...)`.

    Returns:
        `dict` with `results` (one output per call), `transformers_version`, `pipeline_class`, `pipeline_module`.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONNOUSERSITE="1")
    env.pop("PYTHONPATH", None)
    request = {"repo_id": repo_id, "calls": list(calls), "pipeline_kwargs": dict(pipeline_kwargs or {})}
    completed = subprocess.run(
        [python or sys.executable, "-c", _CONSUMER_SCRIPT],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"The consumer process failed (exit {completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout)


__all__ = ["install_in_offline_cache", "run_stock_pipeline"]
