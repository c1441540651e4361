"""Where lines go and what every command's output shares: stdout or stderr, --quiet, the
log handler, a reader that leaves early (`| head`), the rerun commands, the `Error:` line."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import click

from inatdl.constants import DEFAULT_DATA_DIR

log = logging.getLogger("inatdl")


class Output:
    """Where lines go: results to stdout unless quiet, problems to stderr always."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def say(self, text: str = "") -> None:
        if not self.quiet:
            click.echo(text)

    def warn(self, text: str) -> None:
        click.echo(text, err=True)

    def progress(self, text: str) -> None:
        """A line of progress on stderr, left out under --quiet."""
        if not self.quiet:
            click.echo(text, err=True)


class _ReaderMayLeave:
    """A stream whose reader may stop reading (`inatdl ... | head`): what is written after
    is discarded, and the command goes on to the exit code its work earns. Otherwise that
    code would depend on timing: 0 when the output fitted in the pipe before the reader
    left, 1 (Click's) when it did not."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self) -> None:
        """From now on the stream's descriptor writes to the null device."""
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._stream.fileno())
        finally:
            os.close(null)
        with contextlib.suppress(OSError):
            self._stream.flush()  # what was buffered for the reader goes nowhere

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """stdout and stderr, for the duration, as _ReaderMayLeave streams."""
    streams = sys.stdout, sys.stderr
    sys.stdout = _ReaderMayLeave(sys.stdout)
    sys.stderr = _ReaderMayLeave(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams


def setup_logging(verbose: bool, quiet: bool) -> None:
    """The library's log lines on stderr: debug with -v, errors only with -q."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.propagate = False
    if verbose:
        log.setLevel(logging.DEBUG)
    elif quiet:
        log.setLevel(logging.ERROR)
    else:
        log.setLevel(logging.INFO if not sys.stderr.isatty() else logging.WARNING)


def photos(count: int) -> str:
    return f"{count} photo" if count == 1 else f"{count:,} photos"


def command_line(data_dir: Path, *words: str) -> str:
    """An inatdl command a user can paste: `--data-dir` only when it is not the default."""
    command = ["inatdl"]
    if Path(data_dir) != Path(DEFAULT_DATA_DIR):
        command += ["--data-dir", str(data_dir)]
    return shlex.join([*command, *words])


def show_error(message: str) -> None:
    """The one line a failed command ends with."""
    click.echo(f"Error: {message}", err=True)
