"""Writes that a crash never leaves half done: one file (`write_atomically`) or a whole folder (`swap_into_place`).

A file is written to a temporary name beside it and moved in with `os.replace`. A folder is built beside its target
(`staging_prefix`) and swapped into place, so at every instant the target is the previous folder or the new one,
complete; `writing_beside` serialises the runs that write beside one target and first cleans up (`recover`) after any
run that was killed there. The operating system refusing a write there (permission, read-only, no space) is one
`OutputNotWrittenError`. Every command that writes uses it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from hubheads.errors import writing_into

logger = logging.getLogger(__name__)


def write_atomically(path: Path, content: bytes | str | Callable[[Path], object]) -> None:
    """Write `content` to `path` through a temporary file beside it (named `.{name}.*.tmp`) and `os.replace`, so
    `path` is never seen half-written.

    Args:
        path (`Path`): the file to write.
        content (`bytes`, `str` or a callable): bytes, text (written as UTF-8), or a function that writes the file it
            is given (e.g. `lambda p: pyarrow.parquet.write_table(table, p)`).
    """
    with writing_into(path.parent, str(path)):
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            if callable(content):
                os.close(handle)
                content(Path(temporary))
            else:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(content.encode("utf-8") if isinstance(content, str) else content)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def staging_prefix(out: Path) -> str:
    return f".{out.name}.tmp-"


def backup_prefix(out: Path) -> str:
    return f".{out.name}.old-"


@contextlib.contextmanager
def writing_beside(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on OUT's parent folder while a run writes beside OUT, and first clean up after any run
    that was killed there: no other run is then writing in it, so every leftover is a dead run's.

    The lock is an `flock` on the folder itself (nothing is left behind); two exports into one folder take turns.
    Where `fcntl` does not exist (Windows) there is no lock, and leftovers are cleaned up all the same."""
    try:
        import fcntl
    except ImportError:  # Windows
        fcntl = None  # type: ignore[assignment]
    with writing_into(out.parent, str(out)):  # the OS refusing a write is one error line, not a traceback
        descriptor = os.open(out.parent, os.O_RDONLY) if fcntl is not None else None
        try:
            if descriptor is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            recover(out)
            yield
        finally:
            if descriptor is not None:
                os.close(descriptor)  # releases the lock


def recover(out: Path) -> None:
    """Finish what a killed run left beside `out`. A run killed between moving the old OUT aside and moving the new
    one in (the fallback swap, where the OS has no atomic exchange) left OUT missing: the previous folder is put back.
    Then every leftover of a dead run (a staging folder, a moved-aside previous folder) is deleted."""
    for backup in sorted(out.parent.glob(glob.escape(backup_prefix(out)) + "*")):
        previous = backup / "previous"
        if previous.is_dir() and not out.exists():
            os.replace(previous, out)
            logger.warning("Restored %s, which an interrupted export had moved aside.", out)
        shutil.rmtree(backup, ignore_errors=True)
    for staging in sorted(out.parent.glob(glob.escape(staging_prefix(out)) + "*")):
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def replacing_folder(out: Path) -> Iterator[Path]:
    """A staging folder beside `out` to build the new folder in: when the block ends, its files are given the modes
    of the user's umask (`mkdtemp` and `save_pretrained` may make them private) and it is swapped into place
    (`swap_into_place`); when the block raises, it is deleted and `out` is left as it was.

    Runs under `writing_beside(out)`, so a run killed before cleans up first and two runs take turns.
    """
    with writing_into(out.parent, str(out)):
        out.parent.mkdir(parents=True, exist_ok=True)
    with writing_beside(out):
        staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=staging_prefix(out)))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes the folder private; what it becomes is shared
        try:
            yield staging
            for path in staging.iterdir():
                path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
            swap_into_place(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


#: renameat2(2) flag: swap two paths in one step (Linux 3.15+, on ext4, xfs, btrfs, tmpfs and most others).
RENAME_EXCHANGE = 2
AT_FDCWD = -100


def exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths atomically (Linux `renameat2(RENAME_EXCHANGE)`); `False` where the OS, the C library
    or the file system has no such call, so the caller falls back to two renames."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)  # glibc 2.28+, musl 1.2.2+
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(error, os.strerror(error), str(second))


def swap_into_place(staging: Path, out: Path) -> None:
    """Move the finished `staging` folder to `out` so that at every instant `out` is the old folder or the new one.

    No `out` (or an empty one): one rename. Otherwise one atomic exchange where the OS has it, then the old folder
    (now at `staging`) is deleted. Elsewhere: the old `out` is moved aside into a `.{out}.old-*` folder, `staging`
    renamed to `out`, the old folder deleted; a kill between the two renames leaves `out` missing until the next run
    beside it (`recover`) puts the old folder back, and a failed rename puts it back at once."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        os.replace(staging, out)
        return
    if exchange(staging, out):
        shutil.rmtree(staging, ignore_errors=True)  # the old folder now
        return
    backup = Path(tempfile.mkdtemp(dir=out.parent, prefix=backup_prefix(out)))
    os.replace(out, backup / "previous")
    try:
        os.replace(staging, out)
    except OSError:
        try:
            os.replace(backup / "previous", out)
        except OSError as restore_error:
            kept = backup / "previous"
            raise OSError(f"Could not replace {out}; its previous content is kept in {kept}.") from restore_error
        shutil.rmtree(backup, ignore_errors=True)
        raise
    shutil.rmtree(backup, ignore_errors=True)


__all__ = [
    "backup_prefix",
    "recover",
    "replacing_folder",
    "staging_prefix",
    "swap_into_place",
    "write_atomically",
    "writing_beside",
]
