"""A photo's .part file, from its first byte to its rename or removal, in one place.

A body is written to ``<final>.part`` and renamed to its final name only when whole, so a
file under a photo's name is always complete. A body cut short keeps its .part when its
host named the body (ETag or Last-Modified), for a Range request with If-Range to go on
after it, in this run or the next; ``<final>.part.info`` says what the .part belongs to
(URL, validator, whole length). Written when a run leaves a body unfinished (a cut, a stop,
Ctrl-C) and, against a SIGKILL or a crash, once a body has been arriving for
PART_INFO_AFTER: not for every photo, as creating and removing a file costs more CPU than
the rest of a fast photo's path. A .part without its .part.info is removed at the next
start (sweep.py, by :func:`classify` and :func:`settle`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from inatdl.constants import SPOOL_BYTES

PART_SUFFIX = ".part"
PART_INFO_SUFFIX = PART_SUFFIX + ".info"

# What a file beside the photos is (classify)
PHOTO, PART, PART_INFO, TEMPORARY = "photo", "part", "part_info", "temporary"


def classify(name: str) -> str:
    """PART, PART_INFO, TEMPORARY (a .part.info being written: of no use once its run
    ended) or PHOTO (a complete file under its final name)."""
    if name.endswith(PART_SUFFIX):
        return PART
    if name.endswith(PART_INFO_SUFFIX):
        return PART_INFO
    if PART_SUFFIX in name:
        return TEMPORARY
    return PHOTO


def settle(data_dir: Path, parts: set[str], infos: set[str], complete: set[str]) -> set[str]:
    """Keep each .part that its .part.info names and whose photo is not complete; remove
    the other .part and .part.info files. ``parts`` and ``infos`` are the photo paths
    (relative to ``data_dir``) they belong to; returns the paths whose .part is kept."""
    kept = (parts & infos) - complete
    for name in parts - kept:
        os.unlink(data_dir / (name + PART_SUFFIX))
    for name in infos - kept:
        os.unlink(data_dir / (name + PART_INFO_SUFFIX))
    return kept


@dataclass
class Partial:
    """A body cut short: the bytes kept in the .part file, and how to ask for the rest."""

    path: str
    url: str
    offset: int = 0
    total: int | None = None  # the photo's whole length, as its host told it
    validator: str | None = None  # its ETag or Last-Modified, for If-Range
    recorded: bool = False  # its .part.info names this body: another run may resume it

    @property
    def info_path(self) -> str:
        return self.path + PART_INFO_SUFFIX[len(PART_SUFFIX) :]

    def continued_by(self, content_range: str) -> bool:
        """Whether a 206 with this Content-Range answers for the bytes after those kept."""
        whole = "" if self.total is None else f"/{self.total}"  # of the body the part began
        return (
            content_range.startswith(f"bytes {self.offset}-")
            and content_range.endswith(whole)
            and self.offset > 0
        )

    def restart(self) -> None:
        """Start the body again from byte 0; its .part.info no longer names it."""
        self.offset, self.total, self.validator = 0, None, None
        if self.recorded:
            self.recorded = False
            with contextlib.suppress(OSError):
                os.unlink(self.info_path)

    def record(self) -> None:
        """Write the .part.info: a temporary name, then a rename; in one write (json.dump
        to a file writes piece by piece)."""
        info = json.dumps({"url": self.url, "validator": self.validator, "total": self.total})
        temporary = self.info_path + ".tmp"
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.write(handle, info.encode())
        finally:
            os.close(handle)
        os.replace(temporary, self.info_path)
        self.recorded = True

    def keep(self) -> None:
        """Write the .part.info of a .part left with bytes, for the next run to go on after
        it; a .part.info that cannot be written takes its .part with it."""
        try:
            self.record()
        except OSError:
            self.discard()

    def take_up(self) -> None:
        """Go on from a .part an earlier run kept, when its .part.info says it is this
        photo's, at this URL, and short of its length; else remove both and start afresh."""
        try:
            with open(self.info_path, encoding="utf-8") as handle:
                info = json.load(handle)
            offset = os.path.getsize(self.path)
        except (OSError, ValueError):
            self.discard()
            return
        total, validator = info.get("total"), info.get("validator")
        usable = isinstance(validator, str) and info.get("url") == self.url
        if not usable or not offset or (isinstance(total, int) and offset >= total):
            self.discard()
            return
        self.offset, self.validator, self.recorded = offset, validator, True
        self.total = total if isinstance(total, int) else None

    def discard(self) -> None:
        """Remove the .part and its .part.info: what they hold is of no further use."""
        self.recorded = True  # whether or not this run wrote it: an earlier run may have
        self.restart()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class Spool:
    """A body's bytes on their way to its .part file.

    Held in memory while the body is young and small, and written in one go when it ends
    (or is cut, or dropped): most photos arrive within a fraction of a second, and a write
    a chunk would cost them a system call each. Written as they come once the body is slow
    (see PART_INFO_AFTER) or larger than SPOOL_BYTES. A body resumed from a .part is
    appended to it.
    """

    def __init__(self, partial: Partial) -> None:
        self.partial = partial
        self.handle: io.FileIO | None = _open_part(partial) if partial.offset else None
        self.held: list[bytes] = []
        self.held_bytes = 0
        self.streaming = False

    def head(self) -> bytes:
        """The first bytes of the .part being resumed."""
        assert self.handle is not None
        self.handle.seek(0)
        head = self.handle.read(16)
        self.handle.seek(self.partial.offset)
        return head

    def add(self, chunk: bytes) -> None:
        self.held.append(chunk)
        self.held_bytes += len(chunk)
        if self.streaming or self.held_bytes >= SPOOL_BYTES:
            self.write_out()

    def stream(self) -> None:
        """Write what is held, and every chunk from now on as it comes."""
        self.streaming = True
        self.write_out()

    def write_out(self) -> None:
        if not self.held:
            return
        if self.handle is None:
            self.handle = _create_part(self.partial.path)
        _write_all(self.handle, self.held[0] if len(self.held) == 1 else b"".join(self.held))
        self.held.clear()
        self.held_bytes = 0

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        """Whatever came is in the .part file, for the rename or for a Range request."""
        try:
            self.write_out()
        finally:
            if self.handle is not None:
                self.handle.close()


def _open_part(partial: Partial) -> io.FileIO:
    """Open a .part kept by an earlier attempt or run, to go on after its bytes.
    Unbuffered: what is written is in the file even if the process is killed the next
    instant, for the next run to go on after it."""
    handle = open(partial.path, "r+b", buffering=0)  # noqa: SIM115 - the caller closes it
    handle.truncate(partial.offset)
    return handle


def _create_part(path: str) -> io.FileIO:
    """Create a .part file, unbuffered; its folder is made only when missing (not a call a
    photo)."""
    try:
        return open(path, "wb", buffering=0)  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return open(path, "wb", buffering=0)  # noqa: SIM115


def _write_all(handle: io.FileIO, data: bytes) -> None:
    """An unbuffered write may take fewer bytes than given: write until all are."""
    view = memoryview(data)
    while view:
        view = view[handle.write(view) or 0 :]
