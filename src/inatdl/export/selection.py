"""Which photos an export holds and which split each goes to: photos.csv read as written,
one size, the files present, --min-per-taxon, the splits by group, --max-per-taxon.

The same photos and splits whatever the format: every writer gets this selection. It keeps
nothing a photo in memory: photos.csv is read once into records of numbers a photo (where
its row is, its label, split, file size, group: spill.py) in a scratch file, the counts
and orders the writers need are made from those records on disk, and the writers read each
row back from photos.csv when they write it (rows.py). So memory stays flat however many
photos (a million photos' rows as Python objects took 1.2 GB, their numbers in arrays 100 MB).
"""

from __future__ import annotations

import os
import re
import stat
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inatdl.constants import MANIFEST_FILE, PHOTO_SIZES, PHOTOS_DIR
from inatdl.errors import ExportError
from inatdl.export import spill
from inatdl.export.model import ExportOptions, ExportReport, LicenceCount, TaxonCounts
from inatdl.export.outdir import safe_relative
from inatdl.export.rows import RowFile, records
from inatdl.export.selected import PHOTO, Codes, Selection, as_photos, kept_records
from inatdl.export.spill import HASHED, RecordFile, Scatter, Sorter, count_missing, hashed, sorted_by
from inatdl.photo import EXPORT_COLUMNS
from inatdl.splits import group_key, split_for, unit_hash

#: The manifest columns the export needs; the others are carried into the dataset as they are.
REQUIRED_COLUMNS = EXPORT_COLUMNS
#: What a writer measures of each row while it is read (the text a shard holds for it).
Measure = Callable[[Sequence[str]], int]
#: Photo ids kept as numbers: digits without a leading zero, below 2**63.
_NUMERIC_ID = re.compile(r"0|[1-9][0-9]{0,17}")
#: Where ids that are not plain numbers start in the id order: after every number, by text.
_TEXT_IDS = 1 << 62

#: A photo present on disk as photos.csv's read left it (``pos``: its place among them).
#: ``label`` is its taxon's code here (the labels are numbered once the taxa kept are known);
#: ``cap`` and ``photo`` are --max-per-taxon's orders (unit hashes, as their bits: non-negative
#: floats order as their bits do).
READ = np.dtype(
    [
        ("pos", "<i8"), ("start", "<i8"), ("end", "<i8"), ("id", "<i8"), ("text_id", "i1"),
        ("label", "<i4"), ("split", "i1"), ("size", "<i8"), ("mtime_ns", "<i8"), ("measured", "<i4"),
        ("group", "<i8"), ("observation", "<i8"), ("observer", "<i4"), ("license_code", "<i4"),
        ("coordinates_obscured", "<i4"), ("extension", "<i4"), ("cap", "<i8"), ("photo", "<i8"),
    ]
)  # fmt: skip
#: The columns counted as codes: the label, the report's counts, the card's.
_CODED = ("taxon_name", "observer", "license_code", "coordinates_obscured")
_CODE_FIELD = {"taxon_name": "label", "observer": "observer", "license_code": "license_code",
               "coordinates_obscured": "coordinates_obscured"}  # fmt: skip
#: A photo's group and label, to count the groups of each label.
_GROUPED = np.dtype([("group", "<i8"), ("label", "<i4")])


class _Buffer:
    """The numbers of the rows read since the last chunk was written, in Python's arrays (a
    numpy array grown a row at a time would be copied at every row), emptied in place so
    that the read's bound ``append`` methods stay valid."""

    def __init__(self) -> None:
        self.fields: dict[str, array[Any]] = {
            name: array("q" if READ[name].itemsize == 8 else "i" if READ[name].itemsize == 4 else "b")
            for name in READ.names or ()
            if name not in ("pos", "text_id")
        }
        self.fields["cap"], self.fields["photo"] = array("d"), array("d")  # unit hashes
        self.text_ids: list[int] = []  # the rows held whose id is not a plain number

    def append(self, name: str) -> Callable[[Any], None]:
        return self.fields[name].append

    def flush(self, into: RecordFile) -> None:
        """The rows held written to ``into`` as records, and let go."""
        first, count = len(into), len(self.fields["start"])
        chunk = np.zeros(count, READ)
        chunk["pos"] = np.arange(first, first + count)
        for name, values in self.fields.items():
            if len(values):
                numbers = np.frombuffer(values, np.float64 if values.typecode == "d" else READ[name])
                chunk[name] = numbers.view(np.int64) if values.typecode == "d" else numbers  # see READ
                del numbers  # its hold on the array's buffer, before the array is emptied
            del values[:]
        chunk["text_id"][self.text_ids] = 1
        self.text_ids.clear()
        into.append(chunk)


@dataclass
class _Read:
    """photos.csv's rows of the chosen size as photos.csv's one read leaves them."""

    present: RecordFile
    listed: Sorter = field(default_factory=lambda: Sorter("hash"))  # hashes of every listed path
    listed_rows: int = 0
    codes: dict[str, Codes] = field(default_factory=dict)
    extension: Codes = field(default_factory=Codes)
    id_texts: dict[int, str] = field(default_factory=dict)  # of ids that are not plain numbers
    sizes: set[str] = field(default_factory=set)  # every size photos.csv lists


def select(
    data_dir: Path,
    options: ExportOptions,
    report_for: Path,
    measure: Callable[[tuple[str, ...]], Measure | None],
) -> tuple[Selection, ExportReport]:
    """The photos of ``data_dir`` to export under ``options``, and the report's counts;
    ``measure`` gives, for the manifest's columns, what to measure of each row (or None)."""
    path = data_dir / MANIFEST_FILE
    if not path.is_file():
        raise ExportError(
            f"no photos in the data dir {data_dir} (no {MANIFEST_FILE}): run `inatdl photos fetch` "
            "first, or point --data-dir at the data dir"
        )
    try:
        rows = RowFile(path)
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc}; run `inatdl photos fetch` to rewrite it") from None
    try:
        return _select(rows, data_dir, options, report_for, measure)
    except BaseException:
        rows.close()
        raise


def _select(
    rows: RowFile,
    data_dir: Path,
    options: ExportOptions,
    report_for: Path,
    measure: Callable[[tuple[str, ...]], Measure | None],
) -> tuple[Selection, ExportReport]:
    read = _Read(RecordFile(READ))
    try:
        return _select_read(rows, read, data_dir, options, report_for, measure)
    except BaseException:
        read.present.close()  # else the selection's
        raise
    finally:
        read.listed.close()


def _select_read(
    rows: RowFile,
    read: _Read,
    data_dir: Path,
    options: ExportOptions,
    report_for: Path,
    measure: Callable[[tuple[str, ...]], Measure | None],
) -> tuple[Selection, ExportReport]:
    try:
        header = rows.header()
        columns = tuple(REQUIRED_COLUMNS if header is None else header)
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ExportError(
                f"{rows.path} has no column {', '.join(missing)}; run `inatdl photos fetch` to rewrite it"
            )
        _read(rows, read, columns, options.size, data_dir, options, measure(columns))
    except (OSError, ValueError) as exc:
        raise ExportError(
            f"cannot read {rows.path}: {exc}; run `inatdl photos fetch` to rewrite it"
        ) from None
    if not read.sizes:
        raise ExportError(
            f"no photos in the data dir {data_dir} ({MANIFEST_FILE} is empty): "
            "run `inatdl photos fetch` first"
        )
    size = choose_size(read.sizes, options.size)
    report = ExportReport(report_for, size, tuple(name for name, _ in options.splits), format=options.format)
    present = len(read.present)
    report.missing_files = read.listed_rows - present
    report.unlisted_files = count_unlisted(data_dir, size, read.listed.sorted())
    if not present:
        raise ExportError(
            f"none of the {report.missing_files:,} {size} photos in {MANIFEST_FILE} is in {data_dir}: "
            "run `inatdl photos fetch` to download them again, or point --data-dir at the data dir"
        )
    taxa = read.codes["taxon_name"]
    per_taxon = np.zeros(len(taxa.values), dtype=np.int64)
    for chunk in read.present.chunks():
        per_taxon += np.bincount(chunk["label"], minlength=len(per_taxon))
    kept_taxa = apply_min(per_taxon, taxa.values, options.min_per_taxon, report)
    if not kept_taxa.any():
        raise ExportError(
            f"nothing to export: no taxon has {options.min_per_taxon} photos or more; lower --min-per-taxon"
        )
    capped = None
    if options.max_per_taxon:
        capped = apply_max(read.present, kept_taxa, per_taxon, taxa.values, options.max_per_taxon, report)
    return _kept(rows, columns, read, kept_taxa, capped, options, report), report


def _read(
    rows: RowFile,
    read: _Read,
    columns: tuple[str, ...],
    size: str | None,
    data_dir: Path,
    options: ExportOptions,
    measure: Measure | None,
) -> None:
    """The rows of ``size`` (None: of the first row's size) whose file is present, as
    records, and every size listed: the one pass over photos.csv."""
    read.codes = {c: Codes() for c in _CODED if c in columns}
    photo_id_at, path_at, size_at, observation_at, observer_at = (
        columns.index(c) for c in ("photo_id", "path", "size", "observation_id", "observer")
    )
    uuid_at = columns.index("observation_uuid") if "observation_uuid" in columns else None
    buffer = _Buffer()
    coded = [(columns.index(c), codes.add, buffer.append(_CODE_FIELD[c])) for c, codes in read.codes.items()]
    add_start, add_end, add_size, add_mtime = map(buffer.append, ("start", "end", "size", "mtime_ns"))
    add_split, add_group, add_observation = map(buffer.append, ("split", "group", "observation"))
    add_id, add_measured, add_extension = map(buffer.append, ("id", "measured", "extension"))
    add_cap, add_photo = buffer.append("cap"), buffer.append("photo")
    extension_code = read.extension.add
    root = os.path.join(str(data_dir), "")
    last_key, last_split, last_cap = "", 0, 0.0
    split_index = {name: i for i, (name, _) in enumerate(options.splits)}
    capping = bool(options.max_per_taxon)
    listed = array("q")
    held, listed_rows, chunk = 0, 0, spill.CHUNK
    for row, start, end in records(rows.handle, len(columns)):
        if row[size_at] != size:
            read.sizes.add(row[size_at])
            if size is not None or len(read.sizes) > 1:
                continue
            size = row[size_at]
        listed_rows += 1
        relative = row[path_at]
        listed.append(hash(relative))
        if listed_rows % chunk == 0:
            read.listed.add(np.array(listed, np.int64).view(HASHED))
            del listed[:]
        try:
            found = os.stat(root + relative) if safe_relative(relative) else None
        except (OSError, ValueError):
            found = None
        if found is None or not stat.S_ISREG(found.st_mode):
            continue
        observation = row[observation_at] or (row[uuid_at] if uuid_at is not None else "")
        key = group_key(options.group_by, observation, row[observer_at])
        if key != last_key:  # a group's photos are usually listed together: hashed once
            last_key = key
            last_split = (
                split_index[split_for(unit_hash(options.seed, key), options.splits)] if options.splits else 0
            )
            last_cap = unit_hash(options.seed, f"cap:{key}") if capping else 0.0
        add_start(start)
        add_end(end)
        add_size(found.st_size)
        add_mtime(found.st_mtime_ns)
        add_split(last_split)
        add_group(hash(key))
        add_observation(hash(row[observation_at]))
        photo_id = row[photo_id_at]
        if _NUMERIC_ID.fullmatch(photo_id):
            add_id(int(photo_id))
        else:  # kept as written; ordered as a number (0140) or by its text, after the numbers
            read.id_texts[len(read.present) + held] = photo_id
            buffer.text_ids.append(held)
            add_id(
                int(photo_id)
                if photo_id.isascii() and photo_id.isdigit() and int(photo_id) < _TEXT_IDS
                else _TEXT_IDS
            )
        if capping:
            add_cap(last_cap)
            add_photo(unit_hash(options.seed, f"photo:{photo_id}"))
        if measure is not None:
            add_measured(measure(row))
        for i, code, add in coded:
            add(code(row[i]))
        add_extension(extension_code(relative.rsplit(".", 1)[-1].lower()))
        held += 1
        if held == chunk:
            buffer.flush(read.present)
            held = 0
    buffer.flush(read.present)
    read.listed.add(np.array(listed, np.int64).view(HASHED))
    read.listed_rows = listed_rows
    if read.listed_rows:
        read.sizes.add(str(size))


def _kept(
    rows: RowFile,
    columns: tuple[str, ...],
    read: _Read,
    kept_taxa: np.ndarray,
    capped: np.ndarray | None,
    options: ExportOptions,
    report: ExportReport,
) -> Selection:
    """The selection of the photos kept, labels numbered in sorted order, and the report's
    counts: the kept photos read once from the scratch file, into the orders the writers
    read them in (split then id; label then id) and those that count groups and observations."""
    taxa = read.codes["taxon_name"]
    splits = max(len(options.splits), 1)
    # every taxon code has a photo, and --max-per-taxon keeps at least one of each taxon
    present_labels = np.flatnonzero(kept_taxa)
    labels = sorted(taxa.values[i] for i in present_labels.tolist())
    renumber = np.zeros(len(taxa.values), dtype=np.int32)
    renumber[present_labels] = [labels.index(taxa.values[i]) for i in present_labels.tolist()]
    text_ranks = {text: rank for rank, text in enumerate(sorted(set(read.id_texts.values())))}

    by_id, groups, observations = Sorter("id"), Sorter("label"), Sorter("hash")
    scattered: list[RecordFile] = []  # the selection's, once made
    per_label_split = np.zeros(len(labels) * splits, dtype=np.int64)
    code_counts = {column: np.zeros(len(codes.values), np.int64) for column, codes in read.codes.items()}
    extensions = np.zeros(len(read.extension.values), np.int64)
    try:
        for chunk in kept_records(read.present, kept_taxa, capped):
            for column in code_counts:
                codes_here = chunk[_CODE_FIELD[column]]
                code_counts[column] += np.bincount(codes_here, minlength=len(code_counts[column]))
            extensions += np.bincount(chunk["extension"], minlength=len(extensions))
            photos = as_photos(chunk, renumber)
            for at in np.flatnonzero(chunk["text_id"] & (chunk["id"] == _TEXT_IDS)).tolist():
                photos["id"][at] = _TEXT_IDS + text_ranks[read.id_texts[int(chunk["pos"][at])]]
            per_label_split += np.bincount(
                photos["label"].astype(np.int64) * splits + photos["split"], minlength=len(per_label_split)
            )
            by_id.add(photos)
            grouped = np.zeros(len(chunk), _GROUPED)
            grouped["group"], grouped["label"] = chunk["group"], photos["label"]
            groups.add(grouped)
            observations.add(chunk["observation"].copy().view(HASHED))
        per_split = per_label_split.reshape(len(labels), splits).sum(axis=0)
        per_label = per_label_split.reshape(len(labels), splits).sum(axis=1)
        in_split_order = Scatter(PHOTO, "split", per_split)
        scattered.append(in_split_order.file)
        in_label_order = Scatter(PHOTO, "label", per_label)
        scattered.append(in_label_order.file)
        for photos in by_id.sorted():
            in_split_order.add(photos)
            in_label_order.add(photos)
        group_counts = _count_groups(sorted_by(groups.sorted(), "group"), len(labels))
        report.observations = _distinct(chunk["hash"] for chunk in observations.sorted())
    except BaseException:
        for records in scattered:
            records.close()
        raise
    finally:
        by_id.close()
        groups.close()
        observations.close()
    bounds = np.concatenate(([0], np.cumsum(per_split))).tolist()
    selection = Selection(
        columns=columns,
        rows=rows,
        labels=labels,
        split_names=tuple(name for name, _ in options.splits) or ("",),
        count=int(per_split.sum()),
        in_split_order=in_split_order.file,
        split_ranges=list(zip(bounds[:-1], bounds[1:], strict=True)),
        in_label_order=in_label_order.file,
        id_texts=read.id_texts,
        source=read.present,
        kept_taxa=kept_taxa,
        capped=capped,
        renumber=renumber,
        value_counts={
            column: {codes.values[i]: int(n) for i, n in enumerate(code_counts[column].tolist()) if n}
            for column, codes in read.codes.items()
        },
        extensions=sorted(read.extension.values[i] for i in np.flatnonzero(extensions).tolist()),
    )
    count(selection, per_label_split.reshape(len(labels), splits), group_counts, options, report)
    return selection


def _distinct(values: Iterator[np.ndarray]) -> int:
    """How many distinct values sorted ``values`` (chunks) hold."""
    distinct, last = 0, None
    for chunk in values:
        if not len(chunk):
            continue
        distinct += int(np.count_nonzero(chunk[1:] != chunk[:-1])) + int(last is None or chunk[0] != last)
        last = chunk[-1]
    return distinct


def _count_groups(grouped: Iterator[np.ndarray], labels: int) -> tuple[int, np.ndarray]:
    """The groups in all, and how many distinct groups each label's photos come from, from
    (group, label) records sorted by group, then label."""
    groups, per_label = 0, np.zeros(labels, dtype=np.int64)
    last: tuple[int, int] | None = None
    for chunk in grouped:
        if not len(chunk):
            continue
        group, label = chunk["group"], chunk["label"]
        new_group = np.empty(len(chunk), dtype=bool)
        new_group[1:] = group[1:] != group[:-1]
        new_pair = new_group.copy()
        new_pair[1:] |= label[1:] != label[:-1]
        new_group[0] = last is None or int(group[0]) != last[0]
        new_pair[0] = new_group[0] or int(label[0]) != last[1]  # type: ignore[index]
        groups += int(np.count_nonzero(new_group))
        per_label += np.bincount(label[new_pair], minlength=labels)
        last = (int(group[-1]), int(label[-1]))
    return groups, per_label


def count_unlisted(data_dir: Path, size: str, listed: Iterator[np.ndarray]) -> int:
    """Complete photos of ``size`` under photos/ that photos.csv does not list: a fetch
    killed (SIGKILL, power cut) after downloading them and before rewriting photos.csv,
    which it does at its end. The state knows them; the next fetch lists them. (Paths are
    compared by hash, sorted on disk: a million paths as text would not stay small.)"""
    complete = re.compile(rf"[0-9]+_{re.escape(size)}\.[0-9A-Za-z]+")  # never a temporary
    found = Sorter("hash")
    try:
        with os.scandir(data_dir / PHOTOS_DIR) as folders:
            for folder in folders:
                if not folder.is_dir(follow_symlinks=False):
                    continue
                prefix = f"{PHOTOS_DIR}/{folder.name}/"
                with os.scandir(folder.path) as entries:  # a taxon's 100,000 names never held at once
                    for chunk in hashed(
                        prefix + entry.name for entry in entries if complete.fullmatch(entry.name)
                    ):
                        found.add(chunk)
    except OSError:
        found.close()
        return 0
    return count_missing(found.sorted(), listed)


def choose_size(sizes: set[str], size: str | None) -> str:
    """The photo size to export: the one fetched, or ``size``; several and none chosen is an error."""
    ordered = sorted(sizes, key=lambda s: (PHOTO_SIZES.get(s, 0), s))
    if size is None:
        if len(ordered) > 1:
            raise ExportError(
                f"the data dir holds photos of several sizes ({', '.join(ordered)}); choose one with --size"
            )
        return ordered[0]
    if size not in ordered:
        raise ExportError(
            f"the data dir holds no {size} photos, only {', '.join(ordered)}; choose one with --size"
        )
    return size


def apply_min(
    per_taxon: np.ndarray, names: list[str], minimum: int | None, report: ExportReport
) -> np.ndarray:
    """Which taxa stay once those with fewer than ``minimum`` photos are left out (named in
    the report)."""
    if not minimum:
        return np.ones(len(per_taxon), dtype=bool)
    small = per_taxon < minimum
    report.left_out = sorted(
        (names[i], int(per_taxon[i])) for i in np.flatnonzero(small & (per_taxon > 0)).tolist()
    )
    keep: np.ndarray = ~small
    return keep


#: --max-per-taxon's records: a photo's taxon, group, place and orders, and its round.
_CAPPED = np.dtype(
    [("pos", "<i8"), ("label", "<i4"), ("group", "<i8"), ("cap", "<i8"), ("photo", "<i8"), ("round", "<i8")]
)


def apply_max(
    present: RecordFile,
    kept_taxa: np.ndarray,
    per_taxon: np.ndarray,
    names: list[str],
    maximum: int,
    report: ExportReport,
) -> np.ndarray:
    """Which photos stay (by their place in photos.csv's read) with at most ``maximum``
    photos a taxon, the same for the same data: one photo of each group first (groups in
    hash order), then a second of each, and so on, so the photos kept come from as many
    observations (or observers) as possible. (Sorted on disk, a field at a time, the least
    significant first: the selection holds a byte a photo.)

    The groups' order is a hash of its own, not the split's: the split bounds cut that one,
    so taking the lowest positions first would keep train groups only."""

    def records() -> Iterator[np.ndarray]:
        for chunk in present.chunks():
            chunk = chunk[kept_taxa[chunk["label"]]]
            capping = np.zeros(len(chunk), _CAPPED)
            for name in ("pos", "label", "group", "cap", "photo"):
                capping[name] = chunk[name]
            yield capping

    # each photo's round: its rank within its (taxon, group), by its own hash, then its place
    by_group = sorted_by(sorted_by(sorted_by(records(), "photo"), "group"), "label")
    with_rounds = _ranked(by_group, ("label", "group"), "round")
    ranked: Iterator[np.ndarray] = with_rounds
    for key in ("pos", "photo", "cap", "round", "label"):  # the least significant first
        ranked = sorted_by(ranked, key)
    kept = np.zeros(len(present), dtype=bool)
    for chunk in _ranked(ranked, ("label",), "round"):
        kept[chunk["pos"][chunk["round"] < maximum]] = True
    capped = kept_taxa & (per_taxon > maximum)
    report.capped = sorted((names[i], int(per_taxon[i])) for i in np.flatnonzero(capped).tolist())
    return kept


def _ranked(chunks: Iterator[np.ndarray], same: tuple[str, ...], rank: str) -> Iterator[np.ndarray]:
    """``chunks`` (sorted so that records of equal ``same`` fields are together) with
    ``rank`` set to each record's place among those records."""
    last: tuple[int, ...] | None = None
    run = 0  # records of the last run seen before this chunk
    for chunk in chunks:
        if not len(chunk):
            continue
        chunk = chunk.copy()
        starts = np.zeros(len(chunk), dtype=bool)
        for name in same:
            starts[1:] |= chunk[name][1:] != chunk[name][:-1]
        starts[0] = last is None or tuple(int(chunk[name][0]) for name in same) != last
        positions = np.arange(len(chunk))
        run_start = np.maximum.accumulate(np.where(starts, positions, -1))
        chunk[rank] = np.where(run_start < 0, run + positions, positions - run_start)
        run = int(chunk[rank][-1]) + 1
        last = tuple(int(chunk[name][-1]) for name in same)
        yield chunk


def count(
    selection: Selection,
    per_taxon: np.ndarray,
    group_counts: tuple[int, np.ndarray],
    options: ExportOptions,
    report: ExportReport,
) -> None:
    """The report's counts: per taxon and split, groups, observers, licences."""
    names = [name for name, _ in options.splits] or [""]
    groups, per_label = group_counts
    for i, label in enumerate(selection.labels):
        counts = {name: int(per_taxon[i][s]) for s, name in enumerate(names)}
        report.taxa.append(TaxonCounts(label, counts, int(per_label[i])))
        empty = [name for name in names if options.splits and counts[name] == 0]
        if empty:
            report.short.append((label, int(per_label[i]), empty))
    report.empty_splits = [name for name, _ in options.splits if report.photos_in(name) == 0]
    report.observers = sorted(selection.value_counts["observer"])
    report.groups = groups
    licences = selection.value_counts["license_code"]
    report.licences = [LicenceCount(code, n) for code, n in sorted(licences.items())]
