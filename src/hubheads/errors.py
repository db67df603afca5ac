"""The errors hubheads raises on purpose, as `huggingface_hub.errors` has them: one family, each class a kind of
failure, and each message saying what was wrong and what to do.

Every class also subclasses the builtin exception callers caught before it existed (`ValueError`,
`FileNotFoundError`, ...), so `except ValueError` keeps working. The CLI (`hubheads.cli`) maps the family to one
`error:` line and its exit code (`exit_code`), and anything outside it to a traceback: a bug.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path


class HubheadsError(Exception):
    """Base class of every error hubheads raises on purpose; `exit_code` is the CLI's exit status for it: 2 when the
    command's input must change (its arguments, its files, the model it is given), 3 when the input is fine and this
    machine's environment must change (a package, the network, a Python environment that would not build)."""

    exit_code = 2


class InvalidInputError(HubheadsError, ValueError, TypeError):
    """A bad argument, option value, config field or file content: the message names it and says what to pass
    instead. A `TypeError` as well as a `ValueError` (as `PipelineInputError` is), so a Python caller's wrong type is
    caught either way."""


class OutputExistsError(HubheadsError, FileExistsError):
    """An output (a folder, a file) that exists and is not replaced without `--force` (`force=True`)."""


class SourceNotFoundError(HubheadsError, FileNotFoundError, ValueError):
    """An input that could not be found: a model, checkpoint or repo given by folder or Hub repo id (not a folder, not
    a repo id, or a repo neither in the local Hugging Face cache nor reachable), a folder without the file it needs
    (config.json), or a data, weights or hyperparameters file that does not exist."""


class MissingDependencyError(HubheadsError, ImportError):
    """An optional package (or a newer release of one) a command needs is not installed: the message says what to
    `pip install`."""

    exit_code = 3


class HubUnreachableError(HubheadsError, ConnectionError):
    """The Hugging Face Hub could not be reached (no network, a proxy, a firewall): the message says what to check and
    how to work offline."""

    exit_code = 3


class HubRefusedError(HubheadsError, OSError):
    """The Hub answered a request with an error (a token it refuses, no write access to the namespace, a conflict):
    the message carries its answer and what to check."""


class EnvironmentFailedError(HubheadsError, RuntimeError):
    """A Python environment hubheads builds or runs a repo in (a transformers release for `verify --transformers`, a
    consumer's fresh process) could not be built (pip or uv failed, the package index was not reachable), or could not
    run the repo at all: the message carries the tail of its error output and what to check."""

    exit_code = 3


class OutputNotWrittenError(HubheadsError, OSError):
    """The operating system refused a write into OUT's folder (no permission, a read-only file system, no space left,
    a quota): nothing was replaced, and the message names the file and what to check."""

    exit_code = 3


#: The `errno` values of a write the operating system refused, rather than a bug.
WRITE_REFUSALS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


@contextlib.contextmanager
def writing_into(folder: Path, what: str) -> Iterator[None]:
    """Turn the operating system's refusal of a write (`WRITE_REFUSALS`) to a path in `folder` (or to `folder`
    itself) inside the block into one `OutputNotWrittenError` naming `what` (e.g. `"OUT out/repo"`) and the path.
    Other errors, and refusals about paths elsewhere (the input being read), pass through as they are."""
    folder = folder.absolute()
    try:
        yield
    except HubheadsError:
        raise
    except OSError as error:
        path = Path(os.fsdecode(error.filename)).absolute() if error.filename is not None else None
        # In the folder, the folder, or a folder above it that had to be made; a full disk names no file.
        inside = (path is None and error.errno in WRITE_REFUSALS - {errno.EACCES, errno.EPERM, errno.EROFS}) or (
            path is not None and (path == folder or folder in path.parents or path in folder.parents)
        )
        if error.errno not in WRITE_REFUSALS or not inside:
            raise
        raise OutputNotWrittenError(
            f"could not write {what}: {error.strerror} ({path}). Check that you can write in {folder} and that its "
            "disk has room, then run it again; nothing was replaced."
        ) from None


@contextlib.contextmanager
def modeling_checks() -> Iterator[None]:
    """Turn a `ValueError` of a check in the modeling files (threshold keys, config fields) into an `InvalidInputError`
    with the same message. Those files ship into Hub repos and import nothing of hubheads, so their checks raise
    builtins (`ValueError`, `PipelineInputError`); wrap only calls that check the user's input with this, so that a
    bug elsewhere keeps its traceback."""
    try:
        yield
    except HubheadsError:
        raise
    except ValueError as error:
        raise InvalidInputError(str(error)) from error


def first_line(error: BaseException) -> str:
    """The first line of `error`'s message, at most 200 characters (a third-party error can run to pages), for a
    family error that names its cause in one line."""
    return (str(error).splitlines() or [""])[0][:200]


#: Class names (of `huggingface_hub`'s HTTP client, httpx or requests, and the builtins) of network failures.
NETWORK_FAILURES = {
    "ConnectError",
    "ConnectTimeout",
    "ConnectionError",
    "TimeoutException",
    "ProxyError",
    "NetworkError",
}


def is_network_failure(error: BaseException) -> bool:
    """Whether `error` (or what it was raised from) means "the Hub is not reachable from here": a connection failure,
    a timeout or a failed name lookup of `huggingface_hub`'s HTTP client, rather than an answer from the Hub (a missing
    repo, a refused token) or the offline mode the user set."""
    return _network_cause(error) is not None


def _network_cause(error: BaseException) -> BaseException | None:
    """The network failure (`NETWORK_FAILURES`) in `error`'s chain of causes, or `None` (see `is_network_failure`)."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 10:
        names = {cls.__name__ for cls in type(current).__mro__}
        if "OfflineModeIsEnabled" in names:  # a ConnectionError too, but one the user asked for
            return None
        if names & NETWORK_FAILURES:
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


@contextlib.contextmanager
def reaching_the_hub(doing: str) -> Iterator[None]:
    """Turn a network failure inside the block into one `HubUnreachableError` that says what to check; an answer from
    the Hub (a missing repo, a refused token) passes through as it is.

    Args:
        doing (`str`): what the block does, for the message (e.g. `"push to org/name"`).
    """
    try:
        yield
    except HubUnreachableError:
        raise
    except Exception as error:
        cause = _network_cause(error)
        if cause is None:
            raise
        from huggingface_hub import constants

        said = " ".join(str(cause).split())  # one line, whatever the HTTP client's message holds
        raise HubUnreachableError(
            f"could not reach the Hugging Face Hub ({constants.ENDPOINT}) to {doing}: {type(cause).__name__}: "
            f"{said}. Check the network connection and any proxy (HTTPS_PROXY), or HF_ENDPOINT, then run it again."
        ) from None


__all__ = [
    "EnvironmentFailedError",
    "OutputNotWrittenError",
    "writing_into",
    "first_line",
    "HubRefusedError",
    "HubUnreachableError",
    "HubheadsError",
    "InvalidInputError",
    "MissingDependencyError",
    "OutputExistsError",
    "SourceNotFoundError",
    "is_network_failure",
    "modeling_checks",
    "reaching_the_hub",
]
