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
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

#: Rows parsed back at once: one csv reader over their bytes joined.
_BATCH = 2048
#: Rows this close together are read in one piece with the bytes between them.
_NEAR = 1 << 16


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

    def header(self) -> list[str] | None:
        """The header row (the file left just after it); None for an empty file."""
        line = self.handle.readline()
        while line.count(b'"') % 2:  # a quoted name with a line break in it
            more = self.handle.readline()
            if not more:
                break
            line += more
        return next(csv.reader(io.StringIO(line.decode("utf-8"), newline="")), None)

    def _read_at(self, start: int, length: int) -> bytes:
        if sys.platform != "win32":
            return os.pread(self.handle.fileno(), length, start)
        self.handle.seek(start)  # no pread on Windows
        return self.handle.read(length)

    def raw(self, ranges: Iterable[tuple[int, int]]) -> Iterator[bytes]:
        """The bytes of the rows at ``ranges``, a batch at a time, each row ending in a line
        break. A batch's rows are read in one piece when they lie close together (photo-id
        order is mostly photos.csv's), else one read a row. (Not a memory map: the pages
        of the file it touched would count as the process's memory.)"""
        batch: list[tuple[int, int]] = []
        for start_end in ranges:
            batch.append(start_end)
            if len(batch) == _BATCH:
                yield self._batch(batch)
                batch = []
        if batch:
            yield self._batch(batch)

    def _batch(self, ranges: list[tuple[int, int]]) -> bytes:
        low = min(start for start, _ in ranges)
        high = max(end for _, end in ranges)
        if high - low <= 2 * sum(end - start for start, end in ranges) + _NEAR:
            span = self._read_at(low, high - low)
            rows = [span[start - low : end - low] for start, end in ranges]
        elif sys.platform != "win32":  # far apart (the credits' order): a read a row
            pread, descriptor = os.pread, self.handle.fileno()
            rows = [pread(descriptor, end - start, start) for start, end in ranges]
        else:
            rows = [self._read_at(start, end - start) for start, end in ranges]
        # the file's last row may have no line break
        return b"".join(row if row.endswith(b"\n") else row + b"\n" for row in rows)

    def rows(self, ranges: Iterable[tuple[int, int]], width: int) -> Iterator[list[str]]:
        """The rows at ``ranges``, in that order, parsed as the first read parsed them."""
        for text in self.raw(ranges):
            reader = csv.reader(io.StringIO(text.decode("utf-8"), newline=""))
            for row in reader:
                yield row if len(row) == width else _fitted(row, width, reader.line_num)

    def close(self) -> None:
        self.handle.close()
