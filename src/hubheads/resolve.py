"""Where a checkpoint is: the one resolver of a folder, or a Hub repo id at a revision, to a local folder.

Every command that takes a model or a repo (`export`, `tune`'s pipeline, `score`, `verify`, `from_backbone`'s
`load_encoder`) resolves it here, so a folder, an `org/name`, a canonical id and a `refs/pr/N` revision mean the same
thing to each, and offline (`HF_HUB_OFFLINE=1`) each reads the local Hugging Face cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from hubheads.errors import HubUnreachableError, InvalidInputError, SourceNotFoundError, reaching_the_hub
from hubheads.offline_hub import check_repo_id

#: What `resolve_checkpoint` never downloads: weights for other frameworks and runtimes, which hubheads never reads.
OTHER_FRAMEWORKS = ["*.h5", "*.ot", "*.msgpack", "*.onnx", "onnx/*", "*.tflite", "coreml/*", "openvino/*"]


def resolve_checkpoint(
    source: str | os.PathLike,
    revision: str | None = None,
    *,
    option: str = "SRC",
    ignore_patterns: list[str] | None = OTHER_FRAMEWORKS,
) -> Path:
    """The local folder of `source`: a folder as it is, or a Hub repo id (`org/name`, or a canonical id such as
    `gpt2`) downloaded with `snapshot_download` at `revision` (with `HF_HUB_OFFLINE=1`, the cached snapshot).

    Args:
        source (`str` or `os.PathLike`): a folder or a Hub repo id.
        revision (`str`, *optional*): a branch, tag, commit or `refs/pr/N` of a repo id; refused for a folder.
        option (`str`, *optional*, defaults to `"SRC"`): how error messages name `source` (the command's option).
        ignore_patterns (`list[str]`, *optional*, defaults to `OTHER_FRAMEWORKS`): files not to download; `None`
            downloads every file (as `verify` does, which checks them all).

    Raises:
        `SourceNotFoundError` (a `FileNotFoundError` and a `ValueError`): `source` is a file, neither a folder nor a
            repo id, or a repo that is not cached and that the Hub says it does not have (or refuses), naming `option`
            and what to check.
        `HubUnreachableError`: a repo that is not cached, with the Hub not reachable: what to check, in one line.
        `InvalidInputError` (a `ValueError`): a `revision` for a folder.
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_dir():
        if revision is not None:
            raise InvalidInputError(
                f"revision={revision!r} applies to Hub repo ids (--revision), but {option} {text} is a folder; drop "
                "it."
            )
        return path
    if path.exists():
        raise SourceNotFoundError(
            f"{option} {text} is a file, not a folder; pass a checkpoint folder or a Hub repo id like 'org/name'."
        )
    from huggingface_hub import snapshot_download

    try:
        check_repo_id(text, option, canonical=True)
    except ValueError as error:
        raise SourceNotFoundError(
            f"{option} {text!r} is neither an existing folder nor a Hub repo id like 'org/name' ({error}); it is "
            "not a folder here, so check the spelling."
        ) from None
    try:
        with reaching_the_hub(f"download {option} {text}"):
            return Path(snapshot_download(text, revision=revision, ignore_patterns=ignore_patterns))
    except HubUnreachableError:  # not cached, and no answer from the Hub: the network, not the name, is the problem
        raise
    except (OSError, ValueError) as error:
        raise SourceNotFoundError(
            f"{option} {text!r} is not a folder, and the Hub repo {text} (revision {revision or 'main'}) could not be "
            f"found in the local Hugging Face cache or on the Hub ({type(error).__name__}: {error}). Check the name, "
            "the revision and your access (`hf auth login`), or unset HF_HUB_OFFLINE."
        ) from error


def cached_snapshot(repo_id: str, revision: str | None = None) -> Path | None:
    """The folder of `repo_id`'s snapshot in the local Hugging Face cache (its name is the commit id), or `None`."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


__all__ = ["OTHER_FRAMEWORKS", "cached_snapshot", "resolve_checkpoint"]
