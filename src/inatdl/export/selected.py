"""The photos an export holds, as the selection leaves them (selection.py): records of
numbers a photo in scratch files (spill.py), in the orders the writers read them, and their
rows read back from photos.csv (rows.py) when a writer asks. Nothing a photo is held."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from inatdl.export.model import ExportPhoto
from inatdl.export.rows import RowFile
from inatdl.export.spill import RecordFile

#: A photo as the writers read it: where its row is in photos.csv, its id (a number, or
#: ``text_id``: its text is the selection's ``id_texts[pos]``), label, split and file.
PHOTO = np.dtype(
    [
        ("pos", "<i8"), ("start", "<i8"), ("end", "<i8"), ("id", "<i8"), ("text_id", "i1"),
        ("label", "<i4"), ("split", "i1"), ("size", "<i8"), ("mtime_ns", "<i8"), ("measured", "<i4"),
    ]
)  # fmt: skip
PHOTO_FIELDS: tuple[str, ...] = PHOTO.names or ()


class Codes:
    """The distinct values of a column, each kept once, and a small number for each."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._index: dict[str, int] = {}

    def add(self, value: str) -> int:
        """``value``'s code."""
        code = self._index.get(value)
        if code is None:
            code = self._index[value] = len(self.values)
            self.values.append(value)
        return code


@dataclass
class Selection:
    """The photos to export: counts, and records on disk read back a chunk at a time."""

    columns: tuple[str, ...]
    rows: RowFile
    labels: list[str]  # sorted: a photo's label is its index here (the same in every split)
    split_names: tuple[str, ...]  # ("",) without --split
    count: int
    in_split_order: RecordFile  # by split, then photo id: the shards' order
    split_ranges: list[tuple[int, int]]  # each split's records in ``in_split_order``
    in_label_order: RecordFile  # by label, then photo id: the credits' order
    source: RecordFile  # as photos.csv lists them, with the photos not kept (selection.READ)
    kept_taxa: np.ndarray  # by taxon code: kept by --min-per-taxon
    capped: np.ndarray | None  # by place in ``source``: kept by --max-per-taxon
    renumber: np.ndarray  # a taxon code's label
    id_texts: dict[int, str] = field(default_factory=dict)  # ids that are not plain numbers, by pos
    value_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # of the columns coded
    extensions: list[str] = field(default_factory=list)  # of the photos' files, in lowercase

    def __len__(self) -> int:
        return self.count

    def listed(self, split: int | None = None) -> Iterator[np.ndarray]:
        """The photos kept (of ``split``: all by default) in photos.csv's order, as PHOTO records."""
        for chunk in kept_records(self.source, self.kept_taxa, self.capped):
            yield as_photos(chunk if split is None else chunk[chunk["split"] == split], self.renumber)

    def between(self, start: int, stop: int) -> Iterator[np.ndarray]:
        """The records from ``start`` to ``stop`` in the shards' order, a chunk at a time."""
        return self.in_split_order.chunks(start, stop)

    def credited(self) -> Iterator[np.ndarray]:
        """The records by label, then photo id (the credits' order)."""
        return self.in_label_order.chunks()

    def photos(self, chunks: Iterator[np.ndarray] | None = None) -> Iterator[ExportPhoto]:
        """The photos of ``chunks`` (all, in photos.csv's order, by default), rows read back."""
        photo_id_at, path_at = self.columns.index("photo_id"), self.columns.index("path")
        for chunk in self.listed() if chunks is None else chunks:
            ranges = zip(chunk["start"].tolist(), chunk["end"].tolist(), strict=True)
            rows = self.rows.rows(ranges, len(self.columns))
            details = zip(
                chunk["label"].tolist(),
                chunk["split"].tolist(),
                chunk["size"].tolist(),
                chunk["mtime_ns"].tolist(),
                strict=True,
            )
            for row, (label, split, size, mtime_ns) in zip(rows, details, strict=True):
                yield ExportPhoto(
                    tuple(row), row[photo_id_at], self.labels[label], label, row[path_at],
                    self.split_names[split], size, mtime_ns,
                )  # fmt: skip

    def raw(self, chunks: Iterator[np.ndarray]) -> Iterator[bytes]:
        """The rows of ``chunks`` as photos.csv holds them, a batch at a time."""
        for chunk in chunks:
            yield from self.rows.raw(zip(chunk["start"].tolist(), chunk["end"].tolist(), strict=True))

    def id_text(self, chunks: Iterator[np.ndarray]) -> Iterator[str]:
        """The ids of the photos of ``chunks``, as photos.csv writes them."""
        for chunk in chunks:
            if not chunk["text_id"].any():
                yield from map(str, chunk["id"].tolist())
                continue
            numbers = zip(chunk["pos"].tolist(), chunk["id"].tolist(), chunk["text_id"].tolist(), strict=True)
            for pos, photo_id, text in numbers:
                yield self.id_texts[pos] if text else str(photo_id)

    def close(self) -> None:
        self.rows.close()
        for records in (self.in_split_order, self.in_label_order, self.source):
            records.close()


def kept_records(
    source: RecordFile, kept_taxa: np.ndarray, capped: np.ndarray | None
) -> Iterator[np.ndarray]:
    """The records of ``source`` (as photos.csv's read left them) of the photos kept: of a
    taxon ``kept_taxa`` keeps (--min-per-taxon) and, with --max-per-taxon, marked in ``capped``."""
    for chunk in source.chunks():
        keep = kept_taxa[chunk["label"]]
        if capped is not None:
            keep &= capped[chunk["pos"]]
        yield chunk if keep.all() else chunk[keep]


def as_photos(records: np.ndarray, renumber: np.ndarray) -> np.ndarray:
    """``records`` as the writers read them (PHOTO), each taxon's code turned into its label."""
    photos = np.zeros(len(records), PHOTO)
    for name in PHOTO_FIELDS:
        photos[name] = records[name]
    photos["label"] = renumber[records["label"]]
    return photos
