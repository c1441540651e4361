"""What the shard formats share: each split's photos in photo-id order, cut into shards of
at most --shard-size; a shard written under a temporary name and renamed when whole; on an
update, a shard whose contents did not change is kept (or renamed), never rewritten."""

from __future__ import annotations

import contextlib
import hashlib
import os
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from inatdl.errors import ExportOptionError
from inatdl.export.model import ExportPhoto
from inatdl.export.outdir import OTHER_OUT_DIR, PHOTOS_NAME, remove, write_photos, write_state
from inatdl.export.writers import OWNED_TEXTS, Writer
from inatdl.files import disk_error
from inatdl.units import format_size


@dataclass(frozen=True, slots=True)
class Sample:
    """A photo in a shard: the photo, its label's index, its file's size and modification time."""

    photo: ExportPhoto
    label: int
    size: int
    mtime_ns: int


@dataclass
class Shard:
    """One file of samples, and a fingerprint of everything written into it."""

    split: str
    name: str
    samples: list[Sample]
    fingerprint: str = ""


def open_temporary(path: Path) -> BinaryIO:
    """The file a shard is written into before its rename (tests put a full disk here)."""
    return path.open("wb", buffering=1 << 20)


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


class ShardWriter(Writer):
    """A format of shards: says how big a sample is, names a shard, writes one."""

    #: Bumped when a format's bytes change for the same photos, so an update rewrites them.
    version = 1

    @abstractmethod
    def sample_bytes(self, sample: Sample) -> int:
        """The bytes ``sample`` adds to a shard (exact, or a bound)."""

    @abstractmethod
    def shard_bytes(self, samples_bytes: int) -> int:
        """The bytes of a shard whose samples take ``samples_bytes`` (exact, or a bound)."""

    @abstractmethod
    def shard_name(self, split: str, index: int, count: int) -> str:
        """The shard's file name relative to OUT_DIR."""

    @abstractmethod
    def write_shard(self, handle: BinaryIO, shard: Shard) -> None:
        """Write the samples of ``shard`` into ``handle``."""

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
        report = self.context.report
        index_of = {label: i for i, label in enumerate(report.labels)}
        root = str(self.context.data_dir)
        per_split: dict[str, list[Sample]] = {name or "train": [] for name in (report.split_names or ("",))}
        for photo in sorted(self.context.selection.photos, key=_photo_order):
            stat = os.stat(os.path.join(root, photo.path))
            sample = Sample(photo, index_of[photo.label], stat.st_size, stat.st_mtime_ns)
            per_split[photo.split or "train"].append(sample)
        limit = self.context.options.shard_size
        for split, samples in per_split.items():
            cuts: list[list[Sample]] = []
            used = 0
            for sample in samples:
                need = self.sample_bytes(sample)
                if self.shard_bytes(need) > limit:
                    raise ExportOptionError(
                        f"--shard-size {format_size(limit)} is smaller than photo {sample.photo.photo_id} "
                        f"({format_size(self.shard_bytes(need))} in a shard of its own); give a larger "
                        "--shard-size, such as the default 500MB"
                    )
                if not cuts or self.shard_bytes(used + need) > limit:
                    cuts.append([])
                    used = 0
                cuts[-1].append(sample)
                used += need
            for i, cut in enumerate(cuts):
                yield Shard(split, self.shard_name(split, i, len(cuts)), cut, self._fingerprint(cut))

    def _fingerprint(self, samples: list[Sample]) -> str:
        """A digest of what decides the shard's bytes: the format, each photo's row, label
        and file (size and modification time), so a changed photo rewrites its shard."""
        digest = hashlib.sha256(f"{type(self).__name__}:{self.version}:{self.fingerprint_extra()}".encode())
        for sample in samples:
            digest.update(repr((sample.photo.values, sample.label, sample.size, sample.mtime_ns)).encode())
        return digest.hexdigest()

    def write(self, stale: Sequence[str]) -> None:
        context, report = self.context, self.context.report
        out, previous = context.out_dir, context.previous
        # What each shard file on disk holds now, saved after every shard: an export cut
        # short (a full disk, Ctrl-C) keeps the shards it finished.
        self.on_disk = dict(previous.shards) if previous else {}
        for shard in self.shards:
            target = out / shard.name
            was = next((name for name, print_ in self.on_disk.items() if print_ == shard.fingerprint), None)
            if was == shard.name and target.is_file():
                report.shards_kept += 1
                continue
            if was is not None and (out / was).is_file():
                os.replace(out / was, target)  # the same photos under a new name (-of-MMMMM changed)
                del self.on_disk[was]
                report.shards_kept += 1
            else:
                self._write_whole(target, shard)
                report.shards_written += 1
            self.on_disk[shard.name] = shard.fingerprint
            write_state(out, self.files_of_both, context.options, shards=self.on_disk)
        self.write_extra_files()
        for relative in stale:
            remove(out, relative)
        self.on_disk = {shard.name: shard.fingerprint for shard in self.shards}
        before = previous.photos if previous else set()
        now = {photo.photo_id for photo in context.selection.photos}
        report.added, report.removed, report.kept = len(now - before), len(before - now), len(now & before)
        write_photos(out, sorted(now, key=_id_order))

    def write_extra_files(self) -> None:
        """Write the files beside the shards."""

    def _write_whole(self, target: Path, shard: Shard) -> None:
        """Write ``shard`` to a temporary name and rename it: a shard cut short by a full
        disk or a Ctrl-C never lies under its final name."""
        temporary = target.with_name(f".{target.name}.part")
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


def _id_order(photo_id: str) -> tuple[int, str]:
    """Photo ids in number order (9 before 10); anything else after them, as text."""
    return (int(photo_id), "") if photo_id.isdigit() else (1 << 62, photo_id)


def _photo_order(photo: ExportPhoto) -> tuple[int, str]:
    return _id_order(photo.photo_id)
