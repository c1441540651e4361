"""The photos an export holds, as the selection leaves them (selection.py): numbers a photo
in numpy arrays, and their rows read back from photos.csv (rows.py) when a writer asks."""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from inatdl.export.model import ExportPhoto
from inatdl.export.rows import RowFile

#: Photos whose numbers are turned into Python objects at once.
_CHUNK = 8192


class Codes:
    """The distinct values of a column, each kept once, and a small number a photo."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._index: dict[str, int] = {}
        self.codes = array("i")

    def add(self, value: str) -> None:
        code = self._index.get(value)
        if code is None:
            code = self._index[value] = len(self.values)
            self.values.append(value)
        self.codes.append(code)

    def array(self) -> np.ndarray:
        return np.frombuffer(self.codes, dtype=np.int32) if self.codes else np.zeros(0, np.int32)


@dataclass
class Selection:
    """The photos to export, in photos.csv's order: numbers a photo, the rows read back on demand."""

    columns: tuple[str, ...]
    rows: RowFile
    labels: list[str]  # sorted: a photo's label is its index here (the same in every split)
    split_names: tuple[str, ...]  # ("",) without --split
    start: np.ndarray  # where each photo's row starts and ends in photos.csv
    end: np.ndarray
    label: np.ndarray
    split: np.ndarray
    size: np.ndarray  # its file's size and modification time, from the one stat
    mtime_ns: np.ndarray
    measured: np.ndarray  # what the writer's Measure gave for its row (0 without one)
    ids: np.ndarray  # photo ids as numbers (all of them), or
    id_texts: list[str] | None  # the ids as text, when one of them is not a plain number
    column_values: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    extensions: list[str] = field(default_factory=list)  # of the photos' files, in lowercase

    def __len__(self) -> int:
        return len(self.start)

    def photos(self, indices: Sequence[int] | np.ndarray | None = None) -> Iterator[ExportPhoto]:
        """The photos at ``indices`` (all, in photos.csv's order, by default), rows read back
        (a chunk at a time: a million photos' numbers as Python objects would not stay small)."""
        chosen = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        photo_id_at, path_at = self.columns.index("photo_id"), self.columns.index("path")
        for chunk in chunks(chosen):
            ranges = zip(self.start[chunk].tolist(), self.end[chunk].tolist(), strict=True)
            rows = self.rows.rows(ranges, len(self.columns))
            details = zip(
                self.label[chunk].tolist(),
                self.split[chunk].tolist(),
                self.size[chunk].tolist(),
                self.mtime_ns[chunk].tolist(),
                strict=True,
            )
            for row, (label, split, size, mtime_ns) in zip(rows, details, strict=True):
                yield ExportPhoto(
                    tuple(row), row[photo_id_at], self.labels[label], label, row[path_at],
                    self.split_names[split], size, mtime_ns,
                )  # fmt: skip

    def raw(self, indices: np.ndarray) -> Iterator[bytes]:
        """The rows at ``indices`` as photos.csv holds them, a batch at a time."""
        for chunk in chunks(indices):
            yield from self.rows.raw(zip(self.start[chunk].tolist(), self.end[chunk].tolist(), strict=True))

    def id_order(self) -> np.ndarray:
        """Every photo's index in photo-id order (9 before 10; ids that are not numbers after)."""
        if self.id_texts is None:
            return np.argsort(self.ids, kind="stable")
        texts = self.id_texts
        return np.array(sorted(range(len(texts)), key=lambda i: _id_order(texts[i])), dtype=np.int64)

    def credits_order(self) -> np.ndarray:
        """The photos by label, then photo id: as numbers (photo 9 before photo 10) when
        every id is one, else as text."""
        if self.id_texts is None:
            return np.lexsort((self.ids, self.label))
        texts, label = self.id_texts, self.label.tolist()
        all_digits = all(text.isdigit() for text in texts)
        return np.array(
            sorted(
                range(len(texts)),
                key=lambda i: (label[i], int(texts[i]) if all_digits else 0, texts[i]),
            ),
            dtype=np.int64,
        )

    def id_text(self, indices: np.ndarray) -> Iterator[str]:
        """The ids of the photos at ``indices``, as photos.csv writes them."""
        for chunk in chunks(indices):
            if self.id_texts is None:
                yield from map(str, self.ids[chunk].tolist())
            else:
                yield from map(self.id_texts.__getitem__, chunk.tolist())

    def cells(self, column: str) -> Iterator[str] | None:
        """A column's cells (of the columns counted as codes), None when photos.csv has none."""
        if column not in self.column_values:
            return None
        values, codes = self.column_values[column]
        return (values[code] for code in codes.tolist())

    def close(self) -> None:
        self.rows.close()


def chunks(indices: np.ndarray) -> Iterator[np.ndarray]:
    """``indices`` (or any array) in pieces of _CHUNK: a million photos' numbers as Python
    objects at once would not stay small."""
    for start in range(0, len(indices), _CHUNK):
        yield indices[start : start + _CHUNK]


def _id_order(photo_id: str) -> tuple[int, str]:
    """Photo ids in number order (9 before 10); anything else after them, as text."""
    return (int(photo_id), "") if photo_id.isdigit() else (1 << 62, photo_id)
