"""What the shard formats share: each split's photos in photo-id order, cut into shards of
at most --shard-size; a shard written under a temporary name and renamed when whole; on an
update, a shard whose contents did not change is kept (or renamed), never rewritten."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from inatdl.errors import ExportError, ExportOptionError
from inatdl.export.outdir import OTHER_OUT_DIR, PHOTOS_NAME, remove, write_photos, write_state
from inatdl.export.spill import Sorter, count_missing, hashed, hashed_on_the_way
from inatdl.export.writers import OWNED_TEXTS, Writer
from inatdl.files import disk_error
from inatdl.units import format_size


@dataclass
class Shard:
    """One file of samples (the selection's records from ``start`` to ``stop`` in the
    shards' order: a split's, in photo-id order), and a fingerprint of everything written
    into it, taken when the shard is about to be written."""

    split: str
    name: str
    start: int
    stop: int
    fingerprint: str = ""


def open_temporary(path: Path) -> BinaryIO:
    """The file a shard is written into before its rename (tests put a full disk here)."""
    return path.open("wb", buffering=1 << 20)


def temporary_name(target: Path) -> Path:
    """Where a shard is written before it is whole."""
    return target.with_name(f".{target.name}.part")


def read_file(path: str, size: int) -> bytes:
    """A photo's bytes with the fewest calls (no buffered file object a photo, one read for
    a file of the ``size`` planned; a read short of what was asked is a regular file's end)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while True:
            asked = max(size + 1, 1 << 16)
            chunk = os.read(descriptor, asked)
            chunks.append(chunk)
            if len(chunk) < asked:
                break
    finally:
        os.close(descriptor)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class WriteBehind:
    """A shard's pieces written by a thread of their own, so that the kernel's copy of one
    piece (a write releases the GIL) overlaps the making of the next on the other core. An
    error of a write is raised by the next ``write`` or by the block's end."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.pieces: queue.Queue[bytes | bytearray | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="shard-writer", daemon=True)

    def __enter__(self) -> WriteBehind:
        self.thread.start()
        return self

    def _run(self) -> None:
        while (piece := self.pieces.get()) is not None:
            if self.error is None:  # after an error, the pieces are only drained
                try:
                    self.handle.write(piece)
                except BaseException as exc:  # raised in the exporting thread
                    self.error = exc

    def write(self, piece: bytes | bytearray) -> None:
        """Hand ``piece`` over (never to be changed after): it is written in the background."""
        if self.error is not None:
            raise self.error
        self.pieces.put(piece)

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.pieces.put(None)
        self.thread.join()
        if kind is None and self.error is not None:
            raise self.error


class ShardWriter(Writer):
    """A format of shards: says how big a sample is, names a shard, writes one."""

    #: Bumped when a format's bytes change for the same photos, so an update rewrites them.
    version = 1

    @abstractmethod
    def sample_bytes(self, label: int, size: int, measured: int) -> int:
        """The bytes a sample adds to a shard (exact, or a bound), from its label's index,
        its file's size and what ``measure`` gave for its row."""

    @abstractmethod
    def shard_bytes(self, samples_bytes: int) -> int:
        """The bytes of a shard whose samples take ``samples_bytes`` (exact, or a bound)."""

    @abstractmethod
    def shard_name(self, split: str, index: int, count: int) -> str:
        """The shard's file name relative to OUT_DIR."""

    @abstractmethod
    def write_shard(self, handle: BinaryIO, shard: Shard) -> None:
        """Write the samples of ``shard`` into ``handle``."""

    def before_workers(self) -> None:
        """Anything to set up once in the export before the workers are forked (shared by
        them, not made again in each)."""

    def extra_files(self) -> list[str]:
        """Files beside the shards (labels.txt)."""
        return []

    def fingerprint_extra(self) -> str:
        """What else decides the bytes of every shard (the labels, for Parquet's schema)."""
        return ""

    def plan(self) -> list[str]:
        self.shards = list(self._cut())
        files = sorted({*(shard.name for shard in self.shards), *self.extra_files(), PHOTOS_NAME})
        previous = self.context.previous.files if self.context.previous else []
        self.files_of_both = sorted({*previous, *files, *OWNED_TEXTS})
        return files

    def _cut(self) -> Iterator[Shard]:
        selection = self.context.selection
        limit = self.context.options.shard_size
        for split, (first, last) in zip(selection.split_names, selection.split_ranges, strict=True):
            needs = itertools.chain.from_iterable(
                map(
                    self.sample_bytes,
                    chunk["label"].tolist(),
                    chunk["size"].tolist(),
                    chunk["measured"].tolist(),
                )
                for chunk in selection.between(first, last)
            )
            bounds: list[int] = []  # where each shard starts in the split's records
            used = 0
            for position, need in enumerate(needs):
                if self.shard_bytes(need) > limit:
                    at = first + position
                    photo_id = next(selection.id_text(selection.between(at, at + 1)))
                    raise ExportOptionError(
                        f"--shard-size {format_size(limit)} is smaller than photo {photo_id} "
                        f"({format_size(self.shard_bytes(need))} in a shard of its own); give a larger "
                        "--shard-size, such as the default 500MB"
                    )
                if not bounds or self.shard_bytes(used + need) > limit:
                    bounds.append(position)
                    used = 0
                used += need
            if not bounds:  # a split without photos: no shard (the card names the others)
                continue
            name = split or "train"
            ends = [*bounds[1:], last - first]
            for i, (start, end) in enumerate(zip(bounds, ends, strict=True)):
                yield Shard(name, self.shard_name(name, i, len(bounds)), first + start, first + end)

    def _fingerprint(self, shard: Shard) -> str:
        """A digest of what decides the shard's bytes: the format, the columns, each photo's
        row as photos.csv holds it, its label and file (size and modification time), so a
        changed photo rewrites its shard. (The rows' bytes, not their values: no row is
        parsed for a shard that is kept.)"""
        selection = self.context.selection
        digest = hashlib.sha256(
            f"{type(self).__name__}:{self.version}:{self.fingerprint_extra()}:{selection.columns}".encode()
        )
        for rows in selection.raw(selection.between(shard.start, shard.stop)):
            digest.update(rows)
        for numbers in ("label", "size", "mtime_ns"):
            for chunk in selection.between(shard.start, shard.stop):
                digest.update(chunk[numbers].astype("<i8").tobytes())
        return digest.hexdigest()

    def write(self, stale: Iterable[str], meanwhile: Callable[[], None]) -> None:
        context, report = self.context, self.context.report
        out, previous = context.out_dir, context.previous
        # What each shard file on disk holds now, saved after every shard: an export cut
        # short (a full disk, Ctrl-C) keeps the shards it finished.
        self.on_disk = dict(previous.shards) if previous else {}
        to_write: list[Shard] = []
        for shard in self.shards:
            shard.fingerprint = self._fingerprint(shard)
            target = out / shard.name
            was = next((name for name, print_ in self.on_disk.items() if print_ == shard.fingerprint), None)
            if was == shard.name and target.is_file():
                report.shards_kept += 1
            elif was is not None and (out / was).is_file():
                os.replace(out / was, target)  # the same photos under a new name (-of-MMMMM changed)
                del self.on_disk[was]
                report.shards_kept += 1
                self.on_disk[shard.name] = shard.fingerprint
                write_state(out, self.files_of_both, context.options, shards=self.on_disk)
            else:
                to_write.append(shard)
        # A file about to be replaced no longer holds what the state says: forgotten first,
        # so a kill between its rename and the next state never leaves a wrong fingerprint.
        forgotten = [shard.name for shard in to_write if self.on_disk.pop(shard.name, None) is not None]
        if forgotten:
            write_state(out, self.files_of_both, context.options, shards=self.on_disk)
        self._write_all(to_write, meanwhile)
        self.write_extra_files()
        for relative in stale:
            remove(out, relative)
        self.on_disk = {shard.name: shard.fingerprint for shard in self.shards}
        selection = context.selection
        before, now = Sorter("hash"), Sorter("hash")
        try:
            for chunk in hashed(previous.photo_ids() if previous else ()):  # before it is replaced
                before.add(chunk)
            write_photos(out, hashed_on_the_way(selection.id_text(selection.between(0, len(selection))), now))
            report.kept = len(selection) - count_missing(now.sorted(), before.sorted())
        finally:
            before.close()
            now.close()
        report.added, report.removed = len(selection) - report.kept, before.total - report.kept

    def _write_all(self, shards: list[Shard], meanwhile: Callable[[], None]) -> None:
        """Write ``shards``, each whole, each recorded as it is done: in worker processes,
        one shard each at a time, where the platform forks and the machine has more than one
        core (a shard's samples are Python's work a photo: one process kept a core busy and
        the other idle), else here, in order. ``meanwhile`` is called here once, while the
        workers write."""
        workers = min(len(shards), shard_workers())
        if workers < 2:
            meanwhile()
            for shard in shards:
                self._write_whole(self.context.out_dir / shard.name, shard)
                self.record_written(shard)
            return
        _write_in_workers(self, shards, workers, meanwhile)

    def record_written(self, shard: Shard) -> None:
        """``shard`` is whole under its name: saved in OUT_DIR's state, kept by the next run."""
        self.context.report.shards_written += 1
        self.on_disk[shard.name] = shard.fingerprint
        write_state(self.context.out_dir, self.files_of_both, self.context.options, shards=self.on_disk)

    def write_extra_files(self) -> None:
        """Write the files beside the shards."""

    def _write_whole(self, target: Path, shard: Shard) -> None:
        """Write ``shard`` to a temporary name and rename it: a shard cut short by a full
        disk or a Ctrl-C never lies under its final name."""
        temporary = temporary_name(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open_temporary(temporary) as handle:
                self.write_shard(handle, shard)
            os.replace(temporary, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            if isinstance(exc, OSError):
                raise disk_error(exc, target, OTHER_OUT_DIR) from None
            raise

    def state(self) -> dict[str, Any]:
        return {"shards": self.on_disk}

    def split_files(self) -> dict[str, list[str]]:
        files: dict[str, list[str]] = {}
        for shard in self.shards:
            files.setdefault(shard.split, []).append(shard.name)
        return files


#: Most worker processes writing shards at once: each holds a shard's pieces in memory.
MOST_WORKERS = 8


def shard_workers() -> int:
    """How many processes write shards: the cores this process may use, on Linux (fork
    keeps the selection shared, not copied; elsewhere the shards are written here), and
    only from a process of one thread (a fork copies no other thread: a lock one of them
    held would stay held in the worker, as a program calling the library might have)."""
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return 1
    return min(len(os.sched_getaffinity(0)), MOST_WORKERS)


#: The writer and shards a forked worker writes (inherited from the parent, never pickled).
_WORK: tuple[ShardWriter, list[Shard]] | None = None


def _start_worker(parent: int) -> None:
    """A worker leaves Ctrl-C to the parent, which stops it; SIGTERM ends it at once, and so
    does its parent's end, however abrupt (a kill -9 of the export leaves no worker behind).
    The signals, blocked while it was forked, are let through once these are set."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
    try:
        death_signal_set = ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):
        death_signal_set = False
    if not death_signal_set:  # no prctl here: the parent is watched instead
        threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent ended before the line above
        os._exit(1)


def _end_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


#: The signals that stop an export.
_STOPS = {signal.SIGINT, signal.SIGTERM}
#: prctl's option: the signal a process gets when its parent ends (linux/prctl.h).
_PR_SET_PDEATHSIG = 1


def _hand_back_freed_memory() -> None:
    """What C's allocator keeps of the memory freed (the selection's arrays, a shard's
    rows) handed back to the system (glibc's malloc_trim: 10-15 MB at a million photos)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def _write_one(index: int) -> int:
    """In a worker: write the shard at ``index``, whole (its errors go back to the parent)."""
    assert _WORK is not None
    writer, shards = _WORK
    shard = shards[index]
    writer._write_whole(writer.context.out_dir / shard.name, shard)
    _hand_back_freed_memory()
    return index


def _write_in_workers(
    writer: ShardWriter, shards: list[Shard], workers: int, meanwhile: Callable[[], None]
) -> None:
    """``shards`` written by ``workers`` forked processes, each recorded as it is done,
    while ``meanwhile`` runs here. On a worker's error, the shards being written are
    finished and the rest not begun, then the error is raised; on Ctrl-C (or any error
    here), the workers are killed, the shards they finished recorded and their temporary
    files removed: a shard lies under its final name only whole, and none done is lost."""
    global _WORK
    pool: ProcessPoolExecutor | None = None
    futures: list[Future[int]] = []
    recorded: set[int] = set()
    try:
        _WORK = (writer, shards)
        with contextlib.suppress(OSError):  # only to share pyarrow's set-up: the shards say what failed
            writer.before_workers()
        _hand_back_freed_memory()  # not to be shared by the workers, who would keep it
        # Forked with the stopping signals held, so a worker never starts with the export's
        # handlers (a traceback of its own, a SIGTERM turned into KeyboardInterrupt).
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            fork = multiprocessing.get_context("fork")
            pool = ProcessPoolExecutor(workers, fork, _start_worker, (os.getpid(),))
            futures = [pool.submit(_write_one, index) for index in range(len(shards))]
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)
        meanwhile()
        failure: BaseException | None = None
        for future in as_completed(futures):
            if future.cancelled():
                continue
            error = future.exception()
            if error is None:
                recorded.add(future.result())
                writer.record_written(shards[future.result()])
            elif failure is None:
                failure = error
                for other in futures:
                    other.cancel()
        if failure is not None:
            raise failure
    except BaseException as exc:
        _stop_workers(pool, writer, shards, futures, recorded)
        if isinstance(exc, BrokenProcessPool):
            raise ExportError(
                "a process writing the shards ended without finishing; run the same command "
                "again (the finished shards are kept)"
            ) from None
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        _WORK = None


def _stop_workers(
    pool: ProcessPoolExecutor | None,
    writer: ShardWriter,
    shards: list[Shard],
    futures: list[Future[int]],
    recorded: set[int],
) -> None:
    """The workers killed; the shards they finished recorded (whole on disk, not yet
    saved in the state); the temporary files of the others removed, whatever happens."""
    try:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            process.kill()
        for process in processes:
            process.join()
        if pool is not None:  # every result a worker sent before it was killed, read
            pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(Exception):  # the state's own write may be what failed
            for index, future in enumerate(futures):
                finished = future.done() and not future.cancelled() and future.exception() is None
                if finished and index not in recorded:
                    writer.record_written(shards[index])
                    recorded.add(index)
    finally:
        for index, shard in enumerate(shards):
            if index not in recorded:
                with contextlib.suppress(OSError):
                    temporary_name(writer.context.out_dir / shard.name).unlink()
