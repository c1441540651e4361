"""`--format imagefolder`: split and taxon folders of photos (hard links or copies) and a
metadata.csv beside each set of taxon folders, as torchvision's ImageFolder and Hugging
Face's imagefolder loader read them.

pandas is imported here only to check the columns as Hugging Face's loader would type them.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pandas as pd

from inatdl.export.model import ExportPhoto
from inatdl.export.outdir import remove
from inatdl.export.placement import Placer
from inatdl.export.writers import CroissantParts, Writer, literal
from inatdl.files import atomic_writer

METADATA_NAME = "metadata.csv"
IMAGE_GLOBS = ("**/*.jpg", "**/*.jpeg", "**/*.png")
#: The rows of each metadata.csv that Hugging Face's loader types its columns from.
_TYPED_ROWS = 10_000


class ImageFolderWriter(Writer):
    """Photos as files, one folder a taxon (in one folder a split with --split)."""

    def plan(self) -> Iterable[str]:
        context = self.context
        # No folder for a split without photos: Hugging Face's loader refuses an empty split.
        names = context.report.split_names
        self.split_dirs = [name for name in names if name not in context.report.empty_splits] or [""]
        self.metadata_files = [f"{s}/{METADATA_NAME}" if s else METADATA_NAME for s in self.split_dirs]
        return self._files()

    def _files(self) -> Iterator[str]:
        """A file a photo, made as the photos are read back (a million names never held at once)."""
        yield from self.metadata_files
        for photo in self.context.selection.photos():
            yield _target(photo)

    def write(self, stale: Iterable[str], meanwhile: Callable[[], None]) -> None:
        meanwhile()
        context, report = self.context, self.context.report
        for relative in stale:
            report.removed += remove(context.out_dir, relative) and not relative.endswith(METADATA_NAME)
        placer = Placer(context.options.copy)
        source_root, target_root = str(context.data_dir), str(context.out_dir)
        for photo in context.selection.photos():
            target = _target(photo)  # photos/<Taxon_folder>/<file> → <split>/<Taxon_folder>/<file>
            placer.place(os.path.join(source_root, photo.path), os.path.join(target_root, target), report)
        report.linked, report.copied = placer.linked, placer.copied
        self._write_metadata()

    def _write_metadata(self) -> None:
        """metadata.csv in each split folder: file_name, label, then photos.csv's columns."""
        context, report = self.context, self.context.report
        selection = context.selection
        columns = ["file_name", "label", *selection.columns]
        several = len(self.split_dirs) > 1
        report.dropped_columns = columns_read_differently(self._firsts(), columns) if several else []
        kept = [i for i, c in enumerate(columns) if c not in report.dropped_columns]
        with contextlib.ExitStack() as files:
            writers = {}
            for split, metadata in zip(self.split_dirs, self.metadata_files, strict=True):
                writers[split] = csv.writer(
                    files.enter_context(atomic_writer(context.out_dir / metadata)), lineterminator="\n"
                )
                writers[split].writerow([columns[i] for i in kept])
            for photo in selection.photos():
                row = _metadata_row(photo)
                writers[photo.split].writerow([row[i] for i in kept])

    def _firsts(self) -> Iterator[Iterator[ExportPhoto]]:
        """The first photos of each split (what a loader infers the columns' types from), a
        split at a time."""
        selection = self.context.selection
        for split in self.split_dirs:
            at = selection.split_names.index(split)
            yield itertools.islice(selection.photos(selection.listed(at)), _TYPED_ROWS)

    def data_files(self) -> dict[str, str]:
        return {name or "train": f"{name}/**" if name else "**" for name in self.split_dirs}

    def loading(self, folder: str) -> list[str]:
        report = self.context.report
        lines = [
            "```python",
            "from datasets import ClassLabel, load_dataset",
            f'dataset = load_dataset("imagefolder", data_dir={literal(folder)})',
            'names = sorted({label for split in dataset.values() for label in split.unique("label")})',
            'dataset = dataset.cast_column("label", ClassLabel(names=names))  # the same ids in every split',
            "```",
            "",
            "`label` is the taxon's accepted scientific name; every column of `metadata.csv` "
            "(licence, attribution, observer, observation, coordinates, date) comes along. "
            "(`class_encode_column` would number each split's own taxa: with a taxon missing "
            "from a split, the same id would mean another taxon there.)",
        ]
        if report.dropped_columns:
            lines += [
                "",
                f"Not in `metadata.csv`: {', '.join(report.dropped_columns)}, which would be read as "
                "different types in different splits (the loader refuses that).",
            ]
        if report.split_names:
            return [*lines, "", *_torchvision_lines(folder, self.context)]
        return [*lines, "", f"With torchvision: `ImageFolder({literal(folder)})`, one class a taxon folder."]

    def croissant(self) -> CroissantParts:
        metadata = {
            "@type": "cr:FileSet",
            "@id": "metadata-files",
            "name": "metadata-files",
            "description": "metadata.csv of each split: file_name, label and the photo's photos.csv row.",
            "encodingFormat": "text/csv",
            "includes": self.metadata_files,
        }
        images = {
            "@type": "cr:FileSet",
            "@id": "image-files",
            "name": "image-files",
            "description": "The photos, one folder a taxon.",
            "encodingFormat": "image/jpeg",
            "includes": list(IMAGE_GLOBS),
        }

        def column(name: str) -> dict[str, Any]:
            return {"fileSet": {"@id": "metadata-files"}, "extract": {"column": name}}

        sources = {name: column(name) for name in ("photo_id", "label", "license_code", "attribution")}
        file_name = {**column("file_name"), "transform": {"regex": "([^/]+)$"}}
        return CroissantParts([metadata, images], sources, image_files="image-files", image_key=file_name)


WRITER = ImageFolderWriter


def _target(photo: ExportPhoto) -> str:
    file_name = "/".join(photo.path.rsplit("/", 2)[-2:])
    return f"{photo.split}/{file_name}" if photo.split else file_name


def _metadata_row(photo: ExportPhoto) -> list[str]:
    return ["/".join(photo.path.rsplit("/", 2)[-2:]), photo.label, *photo.values]


def columns_read_differently(per_split: Iterable[Iterable[ExportPhoto]], columns: Sequence[str]) -> list[str]:
    """The columns that a reader inferring types, as Hugging Face's loader does (pandas on
    the first 10,000 rows of each metadata.csv), would type differently in two splits: say
    dates empty throughout a small split. That loader refuses such a dataset, so these
    columns stay in photos.csv only."""
    kinds = [kind for photos in per_split if (kind := _kinds(photos, columns)) is not None]
    return [c for c in columns if len({kind[c] for kind in kinds}) > 1]


def _kinds(photos: Iterable[ExportPhoto], columns: Sequence[str]) -> dict[str, str] | None:
    """The kind of values in each column of one split's first rows as pandas reads them
    (None without rows); one split's rows at a time, so the export's peak memory does not
    hold every split's."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(itertools.islice(map(_metadata_row, photos), _TYPED_ROWS))
    text.seek(0)
    read = pd.read_csv(text)
    if read.empty:
        return None
    # the kind of values, as Arrow types what pandas read (True beside empty cells: booleans)
    return {c: pd.api.types.infer_dtype(read[c], skipna=True) for c in columns}


def _torchvision_lines(folder: str, context: Any) -> list[str]:
    """How to load the splits with torchvision, whose ImageFolder numbers the classes of each
    split from its own taxon folders: one taxon missing from a split shifts the ids there."""
    report = context.report
    present = [name for name in report.split_names if name not in report.empty_splits]
    first = present[0]
    intro = f"With torchvision: `ImageFolder({literal(f'{folder}/{first}')})`, one class a taxon folder"
    missing = [
        (label, absent)
        for label, _, empty in report.short
        if (absent := [name for name in empty if name in present])
    ]
    if len(present) == 1:
        return [f"{intro}."]
    if not missing:
        return [f"{intro}; every split holds every taxon, so the class ids are the same in each."]
    listed = "; ".join(f"{label}: none in {', '.join(absent)}" for label, absent in missing)
    unknown = [label for label, absent in missing if first in absent]
    caveat = f" ({', '.join(unknown)} then has no id: leave it out with --min-per-taxon)" if unknown else ""
    lines = [
        f"{intro}. Some taxa are missing from a split ({listed}) and ImageFolder numbers only the "
        f"taxa it finds, so give the other splits the class ids of {first}{caveat}:",
        "",
        "```python",
        "from torchvision.datasets import ImageFolder",
        f"{first} = ImageFolder({literal(f'{folder}/{first}')})",
    ]
    for other in present[1:]:
        lines += [
            f"{other} = ImageFolder({literal(f'{folder}/{other}')})",
            f"{other}.target_transform = "
            f"[{first}.class_to_idx[name] for name in {other}.classes].__getitem__",
        ]
    return [*lines, "```"]
