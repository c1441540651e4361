"""photos.csv read twice without holding it: once whole, each row with the byte range it
takes in the file (``records``), then again row by row, in any order, from those ranges
(``RowFile.rows``) when a writer writes it. So a million photos' rows are never in memory
at once, and the values a writer gets are those photos.csv holds, exactly as written.

The file stays open from the first read to the last: a `photos fetch` that rewrites
photos.csv meanwhile (it renames a new file over it) does not change what the export reads.
"""

from __future__ import annotations

import csv
import io
import mmap
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

#: Rows parsed back at once: one csv reader over their bytes joined.
_BATCH = 2048


def records(handle: BinaryIO, width: int) -> Iterator[tuple[list[str], int, int]]:
    """Each row after the header with the byte offsets of its start and end (blank lines
    skipped; a row short of ``width`` fields padded with empty ones, a longer one an error)."""
    position = handle.tell()

    def lines() -> Iterator[str]:
        nonlocal position
        for line in handle:
            position += len(line)
            yield line.decode("utf-8")

    reader = csv.reader(lines())  # it asks for a line only when its row needs one
    start = position
    for row in reader:
        if row:
            yield _fitted(row, width, reader.line_num), start, position
        start = position


def _fitted(row: list[str], width: int, line: int) -> list[str]:
    if len(row) > width:
        raise ValueError(f"line {line} has {len(row)} fields, not {width}")
    if len(row) < width:
        row += [""] * (width - len(row))
    return row


class RowFile:
    """photos.csv open for reading rows back by their byte ranges."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = path.open("rb")
        self._map: mmap.mmap | None = None

    def header(self) -> list[str] | None:
        """The header row (the file left just after it); None for an empty file."""
        line = self.handle.readline()
        while line.count(b'"') % 2:  # a quoted name with a line break in it
            more = self.handle.readline()
            if not more:
                break
            line += more
        return next(csv.reader(io.StringIO(line.decode("utf-8"), newline="")), None)

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            self._map = mmap.mmap(self.handle.fileno(), 0, access=mmap.ACCESS_READ)
        return self._map

    def raw(self, ranges: Iterable[tuple[int, int]]) -> Iterator[bytes]:
        """The bytes of the rows at ``ranges``, a batch at a time, each row ending in a line break."""
        mapped = self._mapped()
        batch: list[bytes] = []
        for start, end in ranges:
            row = mapped[start:end]
            batch.append(row if row.endswith(b"\n") else row + b"\n")  # the last row may have none
            if len(batch) == _BATCH:
                yield b"".join(batch)
                batch = []
        if batch:
            yield b"".join(batch)

    def rows(self, ranges: Iterable[tuple[int, int]], width: int) -> Iterator[list[str]]:
        """The rows at ``ranges``, in that order, parsed as the first read parsed them."""
        for text in self.raw(ranges):
            reader = csv.reader(io.StringIO(text.decode("utf-8"), newline=""))
            for row in reader:
                yield _fitted(row, width, reader.line_num)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        self.handle.close()
