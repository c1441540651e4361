"""Numbers a photo kept on disk, not in memory: the export's selection holds nothing a photo
(a million photos' arrays took ~100 MB, ten million a GB), so its memory stays flat however
many photos there are.

Records are numpy structured arrays in unnamed temporary files (gone with the process,
however it ends; in $TMPDIR), read back a chunk at a time. ``sorted_by`` sorts records too
many to hold on one integer field, stably (runs sorted in memory, then merged a block of
each at a time), so several fields are sorted one after the other, the least significant
first; ``Scatter`` puts records in the order of a small integer (a split, a label) by writing
each straight to its place.
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO

import numpy as np

from inatdl.errors import ExportError

#: Records sorted in memory at once (a run): a few MB whatever the count.
RUN = 1 << 16
#: Records a merge holds at once, a block of each run, of at least LEAST_BLOCK records.
MERGE = 1 << 17
LEAST_BLOCK = 1024
#: Records read back at once.
CHUNK = 1 << 13


#: Records of a text's hash (Python's, this process's: texts compared without being held).
HASHED = np.dtype([("hash", "<i8")])


def hashed(texts: Iterable[str]) -> Iterator[np.ndarray]:
    """``texts`` as HASHED records, CHUNK at a time."""
    for batch in _batches(texts):
        yield _hashes(batch)


def hashed_on_the_way(texts: Iterable[str], into: Sorter) -> Iterator[str]:
    """``texts`` as they are, each one's hash given to ``into`` on the way (one read of
    them for two uses)."""
    for batch in _batches(texts):
        into.add(_hashes(batch))
        yield from batch


def _batches(texts: Iterable[str]) -> Iterator[list[str]]:
    texts = iter(texts)
    while batch := list(itertools.islice(texts, CHUNK)):
        yield batch


def _hashes(texts: list[str]) -> np.ndarray:
    return np.array(list(map(hash, texts)), np.int64).view(HASHED)


def count_missing(found: Iterator[np.ndarray], known: Iterator[np.ndarray]) -> int:
    """How many of the sorted HASHED records ``found`` are not among the sorted ``known``
    (a merge of the two: a chunk of each held at once)."""
    missing = 0
    held = np.zeros(0, np.int64)  # the chunk of ``known`` now compared
    for chunk in found:
        values = chunk["hash"]
        while len(values):
            while not len(held) or held[-1] < values[0]:  # known below these values: passed
                more = next(known, None)
                if more is None:
                    return missing + len(values) + sum(len(rest) for rest in found)
                held = more["hash"]
            decided = int(np.searchsorted(values, held[-1], side="right"))  # those up to held's last
            at = np.searchsorted(held, values[:decided])
            missing += int(np.count_nonzero(held[at] != values[:decided]))
            values = values[decided:]
    return missing


def scratch_error(exc: OSError) -> ExportError:
    """A scratch file that could not be written (a full disk): what to do, in one line."""
    return ExportError(
        f"cannot write the export's scratch file in {tempfile.gettempdir()} ({exc.strerror or exc}): "
        "free space there, or set TMPDIR to a folder with room, and run the same command again"
    )


class RecordFile:
    """Fixed-width records in an unnamed temporary file, written and read at their places
    (positioned reads: forked workers share it safely)."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        try:
            self.file: IO[bytes] = tempfile.TemporaryFile(prefix="inatdl-export-")  # noqa: SIM115 (closed by close)
        except OSError as exc:
            raise scratch_error(exc) from None
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def append(self, records: np.ndarray) -> None:
        self.write_at(records, self.count)
        self.count += len(records)

    def write_at(self, records: np.ndarray, at: int) -> None:
        """``records`` written at record ``at`` (the file grows as needed)."""
        data = np.ascontiguousarray(records, dtype=self.dtype).data.cast("B")
        offset = at * self.dtype.itemsize
        try:
            while len(data):
                written = _pwrite(self.file, data, offset)
                data, offset = data[written:], offset + written
        except OSError as exc:
            raise scratch_error(exc) from None

    def read(self, start: int, stop: int) -> np.ndarray:
        """The records from ``start`` to ``stop`` (read-only)."""
        size = self.dtype.itemsize
        wanted = (stop - start) * size
        data = _pread(self.file, wanted, start * size)
        while len(data) < wanted:  # a read a little short: the rest
            more = _pread(self.file, wanted - len(data), start * size + len(data))
            if not more:
                raise OSError(f"the export's scratch file ends early ({len(data)} of {wanted} bytes)")
            data += more
        return np.frombuffer(data, dtype=self.dtype)

    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """The records from ``start`` to ``stop`` (the end), CHUNK at a time."""
        stop = self.count if stop is None else stop
        for at in range(start, stop, CHUNK):
            yield self.read(at, min(at + CHUNK, stop))

    def close(self) -> None:
        self.file.close()


def _pwrite(file: IO[bytes], data: memoryview, offset: int) -> int:
    if sys.platform != "win32":
        return os.pwrite(file.fileno(), data, offset)
    file.seek(offset)  # no pwrite on Windows (nor forked workers sharing the file)
    return file.write(data)


def _pread(file: IO[bytes], size: int, offset: int) -> bytes:
    if sys.platform != "win32":
        return os.pread(file.fileno(), size, offset)
    file.seek(offset)
    return file.read(size)


class Sorter:
    """Records (chunks of one dtype) given in order, then read back in the order of their
    integer field ``key``, a chunk at a time; stable: records of equal keys keep the order
    they came in. Runs of RUN records are sorted in memory and written; the runs merged."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.spill: RecordFile | None = None
        self.runs: list[tuple[int, int]] = []
        self.held: list[np.ndarray] = []
        self.count = 0  # held
        self.total = 0  # given

    def add(self, records: np.ndarray) -> None:
        if len(records):
            self.held.append(records)
            self.count += len(records)
            self.total += len(records)
        if self.count >= RUN:
            self._write_run()

    def _write_run(self) -> None:
        self.spill = self.spill or RecordFile(self.held[0].dtype)
        self.runs.append((len(self.spill), len(self.spill) + self.count))
        self.spill.append(_sorted(self.held, self.key))
        self.held, self.count = [], 0

    def sorted(self) -> Iterator[np.ndarray]:
        """Every record given, in order (once)."""
        try:
            if not self.runs:  # all of them held at once: nothing written
                if self.held:
                    yield _sorted(self.held, self.key)
                return
            if self.held:
                self._write_run()
            assert self.spill is not None
            yield from _merged(self.spill, self.runs, self.key)
        finally:
            self.close()

    def close(self) -> None:
        self.held = []
        if self.spill is not None:
            self.spill.close()


def sorted_by(records: Iterable[np.ndarray], key: str) -> Iterator[np.ndarray]:
    """``records`` (chunks of one dtype) in the order of their integer field ``key``, stably."""
    sorter = Sorter(key)
    for chunk in records:
        sorter.add(chunk)
    yield from sorter.sorted()


def _sorted(chunks: list[np.ndarray], key: str) -> np.ndarray:
    block = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    return block[np.argsort(block[key], kind="stable")]


def _merged(spill: RecordFile, runs: list[tuple[int, int]], key: str) -> Iterator[np.ndarray]:
    """The sorted runs of ``spill`` merged, a block of each in memory. A record is given out
    once no record still unread can come before it: the bound is the least of the last
    records read of the runs not yet read to their end (ties: the earlier run, whose records
    come first). (The runs' first and last keys in arrays: a merge of many runs makes no
    Python loop over them all for each block.)"""
    block = max(LEAST_BLOCK, MERGE // len(runs))
    stops = np.array([stop for _, stop in runs], dtype=np.int64)
    read_to = np.array([start for start, _ in runs], dtype=np.int64)
    heads = [spill.read(0, 0)] * len(runs)
    first, last = np.zeros(len(runs), np.int64), np.zeros(len(runs), np.int64)
    empty = np.ones(len(runs), dtype=bool)
    while True:
        for i in np.flatnonzero(empty & (read_to < stops)).tolist():
            end = min(int(read_to[i]) + block, int(stops[i]))
            heads[i] = spill.read(int(read_to[i]), end)
            read_to[i], first[i], last[i], empty[i] = end, heads[i][key][0], heads[i][key][-1], False
        unread = np.flatnonzero(read_to < stops)
        if not len(unread):
            rest = [heads[i] for i in np.flatnonzero(~empty).tolist()]
            if rest:
                yield _sorted(rest, key)
            return
        bound_run = int(unread[np.argmin(last[unread])])  # the first of the least: the earliest run
        bound = last[bound_run]
        pieces = []
        for i in np.flatnonzero(~empty & (first <= bound)).tolist():
            head = heads[i]
            take = int(np.searchsorted(head[key], bound, side="right" if i <= bound_run else "left"))
            if take:
                pieces.append(head[:take])
                heads[i] = head[take:]
                empty[i] = take == len(head)
                if not empty[i]:
                    first[i] = heads[i][key][0]
        yield _sorted(pieces, key)


class Scatter:
    """Records put in the order of their small integer field ``key`` (0 ≤ key < len(counts),
    ``counts`` of each known beforehand) in a file, each written straight to its place;
    records of equal keys keep the order they came in."""

    def __init__(self, dtype: np.dtype, key: str, counts: np.ndarray) -> None:
        self.key = key
        self.file = RecordFile(dtype)
        self.starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self.next = self.starts.copy()
        self.file.count = int(np.sum(counts))

    def add(self, records: np.ndarray) -> None:
        records = records[np.argsort(records[self.key], kind="stable")]
        keys = records[self.key]
        bounds = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        starts = [0, *bounds.tolist()]
        for start, end in zip(starts, [*starts[1:], len(records)], strict=True):
            value = int(keys[start])
            self.file.write_at(records[start:end], int(self.next[value]))
            self.next[value] += end - start
