"""The errors hubheads raises on purpose, as `huggingface_hub.errors` has them: one family, each class a kind of
failure, and each message saying what was wrong and what to do.

Every class also subclasses the builtin exception callers caught before it existed (`ValueError`,
`FileNotFoundError`, ...), so `except ValueError` keeps working. The CLI (`hubheads.cli`) maps the family to one
`error:` line and its exit code (`exit_code`), and anything outside it to a traceback: a bug.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class HubheadsError(Exception):
    """Base class of every error hubheads raises on purpose; `exit_code` is the CLI's exit status for it."""

    exit_code = 2


class SourceNotFoundError(HubheadsError, FileNotFoundError, ValueError):
    """A model, checkpoint or repo given by folder or Hub repo id could not be found: not a folder, not a repo id, or
    a repo neither in the local Hugging Face cache nor reachable."""


class HubUnreachableError(HubheadsError, ConnectionError):
    """The Hugging Face Hub could not be reached (no network, a proxy, a firewall): the message says what to check and
    how to work offline."""


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
    seen = 0
    while error is not None and seen < 10:
        names = {cls.__name__ for cls in type(error).__mro__}
        if "OfflineModeIsEnabled" in names:  # a ConnectionError too, but one the user asked for
            return False
        if names & NETWORK_FAILURES:
            return True
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
        seen += 1
    return False


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
        if not is_network_failure(error):
            raise
        from huggingface_hub import constants

        raise HubUnreachableError(
            f"could not reach the Hugging Face Hub ({constants.ENDPOINT}) to {doing}: {type(error).__name__}: "
            f"{error}. Check the network connection and any proxy (HTTPS_PROXY), or HF_ENDPOINT, then run it again."
        ) from None


__all__ = ["HubUnreachableError", "HubheadsError", "SourceNotFoundError", "is_network_failure", "reaching_the_hub"]
