"""The Hub: pushing an exported folder, and the Hub as consumers meet it, offline.

`push_folder` verifies an exported folder and uploads it in one commit, returning the commit id so consumers can pin
`revision=`.

No machine here reaches the Hub, but `transformers` loads a repo id from the local cache when `HF_HUB_OFFLINE=1`.
`install_in_offline_cache` lays an exported folder out exactly as `huggingface_hub` downloads it
(`models--org--name/blobs`, `snapshots/<commit>/`, `refs/main`), and `run_stock_pipeline` runs the stock
`pipeline("text-classification", model=repo_id, trust_remote_code=True)` in a new interpreter with `hubheads`
blocked, so the code that runs is the repo's own copy, as on a consumer's machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from huggingface_hub import constants
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import HFValidationError, filter_repo_objects, validate_repo_id

from hubheads.export import needs_remote_code

logger = logging.getLogger(__name__)

#: The files `push_folder` uploads: the kinds of file an export writes (config and tokenizer JSON, safetensors
#: weights, the modeling and pipeline files, the card, vocabularies, sentencepiece models, .gitattributes).
UPLOAD_PATTERNS = ["*.json", "*.safetensors", "*.py", "*.md", "*.txt", "*.model", ".gitattributes"]
#: Never uploaded, even when a pattern above matches: anything in a subfolder (an export is flat; a subfolder is a
#: trainer checkpoint, a cache or a run directory).
UPLOAD_IGNORE_PATTERNS = ["*/*"]


def sha256_file(path: Path) -> str:
    """The sha256 of a file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_repo_folder(folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder; pass an exported repo folder.")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json; pass an exported repo folder.")
    return folder


def check_repo_id(repo_id: str, name: str = "repo_id") -> None:
    """Raise a `ValueError` naming `name` unless `repo_id` is `"org/name"` and follows the Hub's rules."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError(f"{name} must look like 'org/name', got {repo_id!r}.")
    try:
        validate_repo_id(repo_id)  # the Hub's rules on characters and length
    except HFValidationError as error:
        raise ValueError(f"{name} {repo_id!r} is not a valid Hub repo id: {error}") from error


def install_in_offline_cache(
    folder: str | os.PathLike, repo_id: str, *, cache_dir: str | os.PathLike | None = None, revision: str = "main"
) -> str:
    """Put `folder` into a Hugging Face Hub cache as repo `repo_id` at `revision`; return the commit id.

    The commit id is a hash of the folder's content (40 hex digits, like a git commit), so the same export gets the
    same id. Files become blobs named by their sha256, linked from `snapshots/<commit>/`, as `hf_hub_download`
    leaves them. `cache_dir` defaults to `huggingface_hub`'s cache (`$HF_HOME/hub`).
    """
    folder = _check_repo_folder(folder)
    check_repo_id(repo_id)
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


@dataclass
class PushResult:
    """What `push_folder` committed.

    Args:
        repo_id (`str`): the repo pushed to, `"org/name"`.
        commit_oid (`str`): the id of the commit (40 hex digits); consumers pin it with `revision=`.
        commit_url (`str`): the commit's page on the Hub.
        revision (`str`): the branch pushed to (`"main"` unless a branch was given); with `create_pr`, the branch the
            pull request targets, while the commit itself sits on the pull request's ref.
        pr_url (`str`, *optional*): the pull request's page, when `create_pr=True`.
        trust_remote_code (`bool`, *optional*, defaults to `True`): whether consumers need `trust_remote_code=True`
            (config.json declares the hubheads pipeline or an `auto_map`); a plain repo loads without it.
    """

    repo_id: str
    commit_oid: str
    commit_url: str
    revision: str
    pr_url: str | None = None
    trust_remote_code: bool = True

    @property
    def usage(self) -> str:
        """The consumer's line, pinned to this commit."""
        remote_code = " trust_remote_code=True," if self.trust_remote_code else ""
        return f'pipeline("text-classification", model="{self.repo_id}",{remote_code} revision="{self.commit_oid}")'


def _left_out(folder: Path) -> list[str]:
    """What of `folder` `push_folder` does not upload: file names, and `name/` for each subfolder."""
    files = [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]
    kept = set(filter_repo_objects(files, allow_patterns=UPLOAD_PATTERNS, ignore_patterns=UPLOAD_IGNORE_PATTERNS))
    return sorted({name.split("/")[0] + ("/" if "/" in name else "") for name in files if name not in kept})


def _needs_remote_code(folder: Path) -> bool:
    """Whether config.json declares remote code; `True` when it cannot be read, since the
    `trust_remote_code=True` line works for every repo."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # verification reported it; pushing it was forced
        return True
    return not isinstance(config, dict) or needs_remote_code(config)


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    create_pr: bool = False,
    branch: str | None = None,
    message: str | None = None,
    token: str | None = None,
    force: bool = False,
    smoke: bool = True,
) -> PushResult:
    """Verify an exported folder and upload it to the Hub in one commit.

    The folder is checked with `hubheads.verify.verify_repo` first; a failing check stops the push before any request
    is sent, unless `force=True`. Then the repo is created if needed (`exist_ok=True`), the branch too when one is
    given, and one `upload_folder` call commits the folder.

    Only the kinds of file an export writes are uploaded (`UPLOAD_PATTERNS`: `*.json`, `*.safetensors`, `*.py`,
    `*.md`, `*.txt`, `*.model`, `.gitattributes`), and only from the top level of the folder, so logs, pickles,
    trainer checkpoints (`checkpoint-500/`) and caches lying next to the export never reach the Hub. The folder is
    uploaded in place rather than copied into a temporary folder first: `export_model` already wrote it as a unit
    (atomically), so a copy would only double the disk space of the weights, and the patterns give the same guarantee
    about what is sent. Files left out are logged.

    With `hf_xet` installed, huggingface_hub 2.x splits an upload of more than 256 files or 100 MB of non-LFS content
    into several commits; an export is far below both, so the push is one commit.

    Args:
        folder (`str` or `os.PathLike`):
            An exported repo folder (written by `export_model` or `hubheads export`), with its config.json.
        repo_id (`str`):
            The repo to push to, `"org/name"`.
        private (`bool`, *optional*, defaults to `False`):
            Create the repo private. An existing repo keeps its visibility.
        create_pr (`bool`, *optional*, defaults to `False`):
            Open a pull request against `main` instead of committing to it.
        branch (`str`, *optional*):
            Commit to this branch (created from `main` if it does not exist) instead of `main`. Cannot be combined
            with `create_pr`: `huggingface_hub` opens pull requests against `main` only.
        message (`str`, *optional*):
            The commit message; defaults to `"Upload hubheads repo (hubheads <version>)"`.
        token (`str`, *optional*):
            A Hub token with write access; defaults to the one `huggingface_hub` finds (`HF_TOKEN`, `hf auth login`).
        force (`bool`, *optional*, defaults to `False`):
            Push even when verification fails (the failures are logged as a warning).
        smoke (`bool`, *optional*, defaults to `True`):
            Let verification run the stock pipeline on the folder in a fresh, offline interpreter.

    Returns:
        [`PushResult`]: the commit, with `usage`, the consumer's `pipeline(...)` line pinned to it.

    Raises:
        `FileNotFoundError`: `folder` is not a folder with a config.json.
        `ValueError`: `repo_id` is not `"org/name"`, `create_pr` is combined with a branch, or verification failed
            and `force` is not set.
    """
    from hubheads import __version__

    folder = _check_repo_folder(folder)
    check_repo_id(repo_id)
    if create_pr and branch not in (None, "main"):
        raise ValueError(
            f"create_pr=True opens a pull request against main, so it cannot be combined with branch={branch!r}; "
            "pass one of them."
        )
    from hubheads.verify import verify_repo

    report = verify_repo(folder, smoke=smoke)
    if not report.ok:
        # The failures and warnings only: the passed checks would bury them.
        problems = replace(report, findings=[finding for finding in report.findings if finding.status != "ok"])
        if not force:
            raise ValueError(
                f"{folder} failed verification, so nothing was pushed:\n{problems.format()}\n"
                "Fix the failures (or re-export the folder), or pass --force (force=True) to push anyway."
            )
        logger.warning("Pushing %s although it failed verification (force=True):\n%s", folder, problems.format())
    left_out = _left_out(folder)
    if left_out:
        logger.info("Not uploading what an export does not write: %s", ", ".join(left_out))
    trust_remote_code = _needs_remote_code(folder)

    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if branch and branch != "main":
        api.create_branch(repo_id, branch=branch, exist_ok=True)
    info = api.upload_folder(
        folder_path=folder,
        repo_id=repo_id,
        repo_type="model",
        revision=branch or None,
        commit_message=message or f"Upload hubheads repo (hubheads {__version__})",
        create_pr=create_pr,
        allow_patterns=UPLOAD_PATTERNS,
        ignore_patterns=UPLOAD_IGNORE_PATTERNS,
    )
    return PushResult(
        repo_id=repo_id,
        commit_oid=info.oid,
        commit_url=info.commit_url,
        revision=branch or "main",
        pr_url=info.pr_url,
        trust_remote_code=trust_remote_code,
    )


__all__ = [
    "check_repo_id",
    "sha256_file",
    "PushResult",
    "install_in_offline_cache",
    "push_folder",
    "run_stock_pipeline",
]
