"""The data dir and atomic writes: a file appears under its name only when whole."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from inatdl.errors import DiskError, StateError


def ensure_data_dir(path: Path) -> Path:
    """The data dir, created if missing; a clear error when it cannot be one."""
    if path.exists() and not path.is_dir():
        raise StateError(f"the data dir {path} is a file, not a folder; choose another with --data-dir")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(exc, path) from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise DiskError(f"cannot write in the data dir {path}; check its permissions or use --data-dir")
    return path


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[TextIO]:
    """A text handle on a temporary file beside ``path``, renamed into place when the block
    ends without error (and removed when it fails), so ``path`` is always whole."""
    with _atomic(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        yield handle


@contextlib.contextmanager
def atomic_binary_writer(path: Path, elsewhere: str = "use --data-dir") -> Iterator[BinaryIO]:
    """As :func:`atomic_writer`, for bytes (a Parquet file); ``elsewhere`` says, in the error
    of a failed write, how to write somewhere else."""
    with _atomic(path, elsewhere) as tmp, tmp.open("wb") as handle:
        yield handle


@contextlib.contextmanager
def _atomic(path: Path, elsewhere: str = "use --data-dir") -> Iterator[Path]:
    """A temporary name beside ``path`` for the block to write, renamed to ``path`` when the
    block ends without error (the writer's handle closed by then), removed when it fails.
    The name is chosen before the file is made, so a Ctrl-C raised just after the file
    appears (signals are raised when a system call returns) still removes it."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies
        yield temporary
        os.replace(temporary, path)
    except BaseException as exc:
        if not isinstance(exc, FileExistsError):  # 48 random bits: never another's, in practice
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        if isinstance(exc, OSError):
            raise disk_error(exc, path, elsewhere) from exc
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_writer(path) as handle:
        handle.write(text)


def disk_error(exc: OSError, path: Path, elsewhere: str = "use --data-dir") -> DiskError:
    """One line for a failed write, saying what to do about it (``elsewhere``: how to write
    somewhere else, which depends on the command)."""
    if exc.errno == errno.ENOSPC:
        return DiskError(
            f"the disk holding {path} is full; free some space and run the same command again "
            "(nothing done so far is lost)"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DiskError(f"no permission to write {path}; check its permissions or {elsewhere}")
    return DiskError(f"cannot write {path}: {exc.strerror or exc}")
