"""`hubheads push`: verify an exported folder and upload it to the Hub in one commit.

`push_folder` runs `verify_repo` on the folder, checks the published repo it would change (legacy files, whether main
loads without remote code today), and uploads the files an export writes in one `upload_folder` commit, returning the
commit id so consumers can pin `revision=`.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from huggingface_hub.utils import filter_repo_objects

from hubheads.errors import HubRefusedError, InvalidInputError, MissingDependencyError, reaching_the_hub
from hubheads.offline_hub import check_repo_folder, check_repo_id
from hubheads.repo_files import is_legacy_weights, needs_remote_code, read_json
from hubheads.resolve import OTHER_FRAMEWORKS
from hubheads.sources import check_trusted
from hubheads.verify import verify_repo

logger = logging.getLogger(__name__)

#: The oldest huggingface_hub `push_folder` runs on: the release line its tests run the real upload path on (its HTTP
#: transport is what the offline tests replace, and it changed between the 0.x, 1.x and 2.x lines).
MIN_HUB_FOR_PUSH = "2.0"


def check_hub_for_push() -> None:
    """Raise an `ImportError` saying what to install unless huggingface_hub is at least `MIN_HUB_FOR_PUSH`."""
    import huggingface_hub
    from packaging.version import Version

    if Version(huggingface_hub.__version__) < Version(MIN_HUB_FOR_PUSH):
        raise MissingDependencyError(
            f"push needs huggingface_hub>={MIN_HUB_FOR_PUSH}, the release line its upload path is tested on; this "
            f"environment has {huggingface_hub.__version__}. Run `pip install -U huggingface_hub transformers` "
            "(transformers 4.x pins huggingface_hub below 1.0), or push from another environment."
        )


#: The files `push_folder` uploads: the kinds of file an export writes (config and tokenizer JSON, safetensors
#: weights, the modeling and pipeline files, the card and its figures, vocabularies, sentencepiece models,
#: .gitattributes).
UPLOAD_PATTERNS = ["*.json", "*.safetensors", "*.py", "*.md", "*.png", "*.txt", "*.model", ".gitattributes"]
#: Never uploaded, even when a pattern above matches: anything in a subfolder (an export is flat; a subfolder is a
#: trainer checkpoint, a cache or a run directory).
UPLOAD_IGNORE_PATTERNS = ["*/*"]


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
        deleted (`list[str]`): legacy files the commit deleted (`delete_legacy=True`).
        stale (`list[str]`): exports for other runtimes (`onnx/`, Core ML, OpenVINO, ...) the repo keeps: they were
            built from the previous weights, so they no longer match; regenerate or delete them.
    """

    repo_id: str
    commit_oid: str
    commit_url: str
    revision: str
    pr_url: str | None = None
    trust_remote_code: bool = True
    deleted: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)

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


def _links_out(folder: Path) -> list[str]:
    """The files `push_folder` would send whose resolved path leaves `folder` (symlinks to a file elsewhere, or
    through a linked folder): `upload_folder` would read and send the target's content."""
    root = folder.resolve()
    files = [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]
    sent = filter_repo_objects(files, allow_patterns=UPLOAD_PATTERNS, ignore_patterns=UPLOAD_IGNORE_PATTERNS)
    return sorted(name for name in sent if not (folder / name).resolve().is_relative_to(root))


def _needs_remote_code(folder: Path) -> bool:
    """Whether config.json declares remote code; `True` when it cannot be read, since the
    `trust_remote_code=True` line works for every repo."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # verification reported it; pushing it was forced
        return True
    return not isinstance(config, dict) or needs_remote_code(config)


def _remote_state(api: Any, repo_id: str, revision: str) -> tuple[list[str], dict[str, Any] | None]:
    """The files of `repo_id` at `revision` (falling back to main for a branch not created yet) and its config.json,
    or `([], None)` for a repo that does not exist yet."""
    import tempfile

    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        try:
            files = api.list_repo_files(repo_id, revision=revision)
        except RevisionNotFoundError:  # a new branch starts from main
            revision = "main"
            files = api.list_repo_files(repo_id, revision=revision)
    except GatedRepoError:  # a subclass of RepositoryNotFoundError, but the repo exists
        raise InvalidInputError(
            f"{repo_id} exists but is gated, and this token cannot read it, so its files cannot be checked before the "
            "push; accept its conditions on the Hub (or push with a token of an account that has access)."
        ) from None
    except RepositoryNotFoundError:
        return [], None
    if "config.json" not in files:
        return files, None
    with tempfile.TemporaryDirectory() as scratch:  # read only: nothing of it goes into the user's cache
        path = api.hf_hub_download(repo_id, "config.json", revision=revision, cache_dir=scratch)
        try:
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except ValueError:
            config = None
    return files, config if isinstance(config, dict) else None


def _check_remote(
    repo_id: str,
    target: str,
    files: list[str],
    old_config: Mapping[str, Any] | None,
    new_config_needs_code: bool,
    *,
    delete_legacy: bool,
    allow_breaking_main: bool,
) -> list[str]:
    """Refuse a push that would leave a published repo failing `verify`, or break its consumers; return the legacy
    files to delete."""
    legacy = sorted(name for name in files if is_legacy_weights(name))
    if legacy and not delete_legacy:
        raise InvalidInputError(
            f"{repo_id} ({target}) holds files that `hubheads verify` rejects and this push would leave in place: "
            f"{', '.join(legacy)}. Pass --delete-legacy (delete_legacy=True) to delete them in the same commit "
            "(revisions pinned before it keep them), or push to a new repo id."
        )
    if target == "main" and old_config is not None and not allow_breaking_main:
        if new_config_needs_code and not needs_remote_code(old_config):
            raise InvalidInputError(
                f"{repo_id}'s main loads today without remote code; this push adds it (custom_pipelines/auto_map), so "
                f'every consumer who calls pipeline("text-classification", model="{repo_id}") without '
                "trust_remote_code=True would get an error. Routes that break no one: --create-pr or --branch NAME "
                "(consumers opt in with revision=), or a new repo id. Pass --allow-breaking-main "
                "(allow_breaking_main=True) if you mean to change main."
            )
    return legacy


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
    delete_legacy: bool = False,
    allow_breaking_main: bool = False,
    trust_remote_code: bool = False,
    allow_unknown_code: bool = False,
    transformers: Sequence[str] | None = None,
) -> PushResult:
    """Verify an exported folder and upload it to the Hub in one commit.

    The folder is checked with `hubheads.verify.verify_repo` first; a failing check stops the push before any request
    is sent, unless `force=True`. Then the repo is created if needed (`exist_ok=True`), the branch too when one is
    given, and one `upload_folder` call commits the folder.

    Only the kinds of file an export writes are uploaded (`UPLOAD_PATTERNS`: `*.json`, `*.safetensors`, `*.py`,
    `*.md`, `*.png`, `*.txt`, `*.model`, `.gitattributes`), and only from the top level of the folder, so logs,
    pickles, trainer checkpoints (`checkpoint-500/`) and caches lying next to the export never reach the Hub; nor
    does a symlink whose target lies outside the folder, even with `force=True` (its content is not the repo's). The
    folder is uploaded in place rather than copied into a temporary folder first: `export_model` already wrote it as
    a unit (atomically), so a copy would only double the disk space of the weights, and the patterns give the same
    guarantee about what is sent. Files left out are logged.

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
        delete_legacy (`bool`, *optional*, defaults to `False`):
            Delete, in the same commit, the files of the repo that `verify` rejects (pickles and legacy weights:
            `pytorch_model.bin`, `training_args.bin`, `tf_model.h5`, `rust_model.ot`, ...). Without it, a push onto
            a repo that holds them is refused, listing them, since the repo would fail `verify` afterwards.
        allow_breaking_main (`bool`, *optional*, defaults to `False`):
            Push remote code (the hubheads pipeline, an `auto_map`) onto the main branch of a repo that loads without
            it today. Without it such a push is refused: consumers calling the repo without
            `trust_remote_code=True` would break. `create_pr` and `branch` break no one.
        trust_remote_code (`bool`, *optional*, defaults to `False`):
            Push a repo whose config.json runs code from another repo (a cross-repo `auto_map`), and let the
            verification's smoke run execute it. Without it such a folder is refused at once, smoke run or not: its
            consumers will run that code, so whoever publishes it must have read it.
        allow_unknown_code (`bool`, *optional*, defaults to `False`):
            Accept Python files that are not byte-identical to a released hubheads file (verification fails on them
            otherwise), after reading them.
        transformers (`Sequence[str]`, *optional*):
            Run the repo as a consumer on these transformers releases first (`verify --transformers`); a release
            that fails stops the push unless `force=True`. The result is recorded in the folder, so the card can show
            it (run `hubheads card` again before pushing to include it).

    Returns:
        [`PushResult`]: the commit, with `usage`, the consumer's `pipeline(...)` line pinned to it.

    Raises:
        `ImportError`: huggingface_hub is older than `MIN_HUB_FOR_PUSH`.
        `FileNotFoundError`: `folder` is not a folder with a config.json.
        `ValueError`: `repo_id` is not `"org/name"`, `create_pr` is combined with a branch, the folder runs another
            repo's code and `trust_remote_code` is not set, or verification failed and `force` is not set.
        `HubUnreachableError`: the Hub could not be reached (no network, a proxy): what to check, in one line.
        `HubRefusedError` (an `OSError`): the Hub answered with an error (a refused token, no write access).
    """
    check_hub_for_push()
    folder = check_repo_folder(folder)
    check_repo_id(repo_id)
    if create_pr and branch not in (None, "main"):
        raise InvalidInputError(
            f"create_pr=True opens a pull request against main, so it cannot be combined with branch={branch!r}; "
            "pass one of them."
        )
    check_trusted(read_json(folder / "config.json"), folder, trust_remote_code)
    report = verify_repo(
        folder,
        smoke=smoke,
        trust_remote_code=trust_remote_code,
        allow_unknown_code=allow_unknown_code,
        transformers=transformers,
    )
    if not report.ok:
        # The failures and warnings only: the passed checks would bury them.
        problems = replace(report, findings=[finding for finding in report.findings if finding.status != "ok"])
        if not force:
            raise InvalidInputError(
                f"{folder} failed verification, so nothing was pushed:\n{problems.format()}\n"
                "Fix the failures (or re-export the folder), or pass --force (force=True) to push anyway."
            )
        logger.warning("Pushing %s although it failed verification (force=True):\n%s", folder, problems.format())
    left_out = _left_out(folder)
    if left_out:
        logger.info("Not uploading what an export does not write: %s", ", ".join(left_out))
    links_out = _links_out(folder)  # verification fails on them; with force=True they are still never sent
    if links_out:
        logger.warning("Not uploading symlinks to files outside %s: %s", folder, ", ".join(links_out))
    from huggingface_hub.errors import HfHubHTTPError

    try:
        with reaching_the_hub(f"push to {repo_id}"):
            return _upload(
                folder,
                repo_id,
                HubTarget(private=private, create_pr=create_pr, branch=branch, message=message or ""),
                token=token,
                delete_legacy=delete_legacy,
                allow_breaking_main=allow_breaking_main,
                links_out=links_out,
            )
    except HfHubHTTPError as error:  # an answer from the Hub, in huggingface_hub's words (several lines)
        raise HubRefusedError(
            f"the Hub refused the push to {repo_id}: {' '.join(str(error).split())} Check that the token (HF_TOKEN "
            f"or `hf auth login`) may write to {repo_id.split('/')[0]}, then run it again."
        ) from error


@dataclass(frozen=True)
class HubTarget:
    """Where and how `push_folder` commits: the repo's visibility when created, a pull request or a branch, the
    commit message (empty: the default one)."""

    private: bool = False
    create_pr: bool = False
    branch: str | None = None
    message: str = ""


def _upload(
    folder: Path,
    repo_id: str,
    target: HubTarget,
    *,
    token: str | None,
    delete_legacy: bool,
    allow_breaking_main: bool,
    links_out: list[str],
) -> PushResult:
    """The Hub half of `push_folder`, once the folder is verified: check the repo's state, create what is missing,
    upload in one commit."""
    from huggingface_hub import HfApi

    from hubheads import __version__

    needs_code = _needs_remote_code(folder)
    branch, create_pr = target.branch, target.create_pr
    api = HfApi(token=token)
    files, old_config = _remote_state(api, repo_id, branch or "main")
    legacy = _check_remote(
        repo_id,
        "a pull request on main" if create_pr else branch or "main",
        files,
        old_config,
        needs_code,
        delete_legacy=delete_legacy,
        allow_breaking_main=allow_breaking_main,
    )
    if legacy:
        logger.warning("Deleting from %s in the same commit: %s", repo_id, ", ".join(legacy))
    stale = [name for name in filter_repo_objects(files, allow_patterns=OTHER_FRAMEWORKS) if name not in legacy]
    if stale:
        logger.warning("Left in place on %s, built from the previous weights: %s", repo_id, ", ".join(stale))
    api.create_repo(repo_id, private=target.private, exist_ok=True, repo_type="model")
    if branch and branch != "main":
        api.create_branch(repo_id, branch=branch, exist_ok=True)
    info = api.upload_folder(
        folder_path=folder,
        repo_id=repo_id,
        repo_type="model",
        revision=branch or None,
        commit_message=target.message or f"Upload hubheads repo (hubheads {__version__})",
        create_pr=create_pr,
        allow_patterns=UPLOAD_PATTERNS,
        ignore_patterns=UPLOAD_IGNORE_PATTERNS + [glob.escape(name) for name in links_out],
        delete_patterns=[glob.escape(name) for name in legacy] or None,  # patterns: `weights[v1].bin` is literal
    )
    return PushResult(
        repo_id=repo_id,
        commit_oid=info.oid,
        commit_url=info.commit_url,
        revision=branch or "main",
        pr_url=info.pr_url,
        trust_remote_code=needs_code,
        deleted=legacy,
        stale=stale,
    )


__all__ = ["PushResult", "UPLOAD_IGNORE_PATTERNS", "UPLOAD_PATTERNS", "push_folder"]
