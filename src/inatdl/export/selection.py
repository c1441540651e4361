"""Which photos an export holds and which split each goes to: photos.csv read as written,
one size, the files present, --min-per-taxon, the splits by group, --max-per-taxon.

The same photos and splits whatever the format: every writer gets this selection. It keeps
a few numbers a photo (numpy arrays: where its row is in photos.csv, its label, split, file
size, group), not the rows: the writers read each row back when they write it (rows.py), so
memory stays flat however many photos (a million photos' rows as Python objects took 1.2 GB).
"""

from __future__ import annotations

import os
import re
import stat
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inatdl.constants import MANIFEST_FILE, PHOTO_SIZES, PHOTOS_DIR
from inatdl.errors import ExportError
from inatdl.export.model import ExportOptions, ExportReport, LicenceCount, TaxonCounts
from inatdl.export.outdir import safe_relative
from inatdl.export.rows import RowFile, records
from inatdl.export.selected import Codes, Selection
from inatdl.photo import EXPORT_COLUMNS
from inatdl.splits import group_key, split_for, unit_hash

#: The manifest columns the export needs; the others are carried into the dataset as they are.
REQUIRED_COLUMNS = EXPORT_COLUMNS
#: What a writer measures of each row while it is read (the text a shard holds for it).
Measure = Callable[[Sequence[str]], int]
#: Photo ids kept as numbers: digits without a leading zero, below 2**63.
_NUMERIC_ID = re.compile(r"0|[1-9][0-9]{0,17}")


@dataclass
class _Read:
    """photos.csv's rows of the chosen size, as numbers, while they are read."""

    start: array[int] = field(default_factory=lambda: array("q"))
    end: array[int] = field(default_factory=lambda: array("q"))
    size: array[int] = field(default_factory=lambda: array("q"))
    mtime_ns: array[int] = field(default_factory=lambda: array("q"))
    measured: array[int] = field(default_factory=lambda: array("i"))  # a row: under 2 GB
    ids: array[int] = field(default_factory=lambda: array("q"))
    id_texts: list[str] | None = None
    group: array[int] = field(default_factory=lambda: array("q"))  # the group key's hash
    observation: array[int] = field(default_factory=lambda: array("q"))
    split: array[int] = field(default_factory=lambda: array("b"))
    cap_position: array[float] = field(default_factory=lambda: array("d"))  # --max-per-taxon's orders
    photo_position: array[float] = field(default_factory=lambda: array("d"))
    codes: dict[str, Codes] = field(default_factory=dict)
    extension: Codes = field(default_factory=Codes)
    listed: array[int] = field(default_factory=lambda: array("q"))  # hashes of every listed path
    listed_rows: int = 0
    sizes: set[str] = field(default_factory=set)  # every size photos.csv lists


#: Columns counted as codes: the label, the report's counts, the card's, the shards' extensions.
_CODED = ("taxon_name", "observer", "license_code", "coordinates_obscured")


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
    try:
        header = rows.header()
        columns = tuple(REQUIRED_COLUMNS if header is None else header)
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ExportError(
                f"{rows.path} has no column {', '.join(missing)}; run `inatdl photos fetch` to rewrite it"
            )
        read = _read(rows, columns, options.size, data_dir, options, measure(columns))
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
    present = len(read.start)
    report.missing_files = read.listed_rows - present
    report.unlisted_files = count_unlisted(data_dir, size, read.listed)
    if not present:
        raise ExportError(
            f"none of the {report.missing_files:,} {size} photos in {MANIFEST_FILE} is in {data_dir}: "
            "run `inatdl photos fetch` to download them again, or point --data-dir at the data dir"
        )
    label = read.codes["taxon_name"].array()
    keep = apply_min(label, read.codes["taxon_name"].values, options.min_per_taxon, report)
    if not keep.any():
        raise ExportError(
            f"nothing to export: no taxon has {options.min_per_taxon} photos or more; lower --min-per-taxon"
        )
    group = np.frombuffer(read.group, dtype=np.int64)
    if options.max_per_taxon:
        keep = apply_max(keep, label, group, read, options.max_per_taxon, report)
    selection = _kept(rows, columns, read, keep, options)
    observation = np.frombuffer(read.observation, dtype=np.int64)
    count(selection, _at(keep, group), _at(keep, observation), options, report)
    return selection, report


def _at(keep: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` where ``keep`` is True: ``values`` itself when every photo stays (a
    million photos' copies of every array took ~40 MB at the selection's peak)."""
    return values if keep.all() else values[keep]


def _read(
    rows: RowFile,
    columns: tuple[str, ...],
    size: str | None,
    data_dir: Path,
    options: ExportOptions,
    measure: Measure | None,
) -> _Read:
    """The rows of ``size`` (None: of the first row's size) whose file is present, as
    numbers, and every size listed: the one pass over photos.csv."""
    read = _Read(codes={c: Codes() for c in _CODED if c in columns})
    at = {c: columns.index(c) for c in ("photo_id", "path", "size", "observation_id", "observer")}
    uuid_at = columns.index("observation_uuid") if "observation_uuid" in columns else None
    coded = [(columns.index(c), codes.add) for c, codes in read.codes.items()]
    root = os.path.join(str(data_dir), "")
    last_key, last_split, last_cap = "", 0, 0.0
    split_index = {name: i for i, (name, _) in enumerate(options.splits)}
    capping = bool(options.max_per_taxon)
    for row, start, end in records(rows.handle, len(columns)):
        if row[at["size"]] != size:
            read.sizes.add(row[at["size"]])
            if size is not None or len(read.sizes) > 1:
                continue
            size = row[at["size"]]
        read.listed_rows += 1
        relative = row[at["path"]]
        read.listed.append(hash(relative))
        try:
            found = os.stat(root + relative) if safe_relative(relative) else None
        except (OSError, ValueError):
            found = None
        if found is None or not stat.S_ISREG(found.st_mode):
            continue
        observation = row[at["observation_id"]] or (row[uuid_at] if uuid_at is not None else "")
        key = group_key(options.group_by, observation, row[at["observer"]])
        if key != last_key:  # a group's photos are usually listed together: hashed once
            last_key = key
            last_split = (
                split_index[split_for(unit_hash(options.seed, key), options.splits)] if options.splits else 0
            )
            last_cap = unit_hash(options.seed, f"cap:{key}") if capping else 0.0
        read.start.append(start)
        read.end.append(end)
        read.size.append(found.st_size)
        read.mtime_ns.append(found.st_mtime_ns)
        read.split.append(last_split)
        read.group.append(hash(key))
        read.observation.append(hash(row[at["observation_id"]]))
        photo_id = row[at["photo_id"]]
        _add_id(read, photo_id)
        if capping:
            read.cap_position.append(last_cap)
            read.photo_position.append(unit_hash(options.seed, f"photo:{photo_id}"))
        if measure is not None:
            read.measured.append(measure(row))
        for i, add in coded:
            add(row[i])
        read.extension.add(relative.rsplit(".", 1)[-1].lower())
    if read.listed_rows:
        read.sizes.add(str(size))
    return read


def _add_id(read: _Read, photo_id: str) -> None:
    if read.id_texts is None and _NUMERIC_ID.fullmatch(photo_id):
        read.ids.append(int(photo_id))
        return
    if read.id_texts is None:  # the first id that is not a plain number: ids as text from here
        read.id_texts = [str(n) for n in read.ids]
    read.id_texts.append(photo_id)


def _kept(
    rows: RowFile, columns: tuple[str, ...], read: _Read, keep: np.ndarray, options: ExportOptions
) -> Selection:
    """The selection of the photos ``keep`` marks, labels numbered in sorted order."""
    taxa = read.codes["taxon_name"]
    label = _at(keep, taxa.array())
    present = np.unique(label)
    labels = sorted(taxa.values[i] for i in present.tolist())
    renumber = np.zeros(len(taxa.values), dtype=np.int32)
    renumber[present] = [labels.index(taxa.values[i]) for i in present.tolist()]

    def kept(values: array[int], dtype: type) -> np.ndarray:
        return _at(keep, np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(len(keep), dtype))

    id_texts = (
        None if read.id_texts is None else [t for t, k in zip(read.id_texts, keep.tolist(), strict=True) if k]
    )
    return Selection(
        columns=columns,
        rows=rows,
        labels=labels,
        split_names=tuple(name for name, _ in options.splits) or ("",),
        start=kept(read.start, np.int64),
        end=kept(read.end, np.int64),
        label=renumber[label],
        split=kept(read.split, np.int8),
        size=kept(read.size, np.int64),
        mtime_ns=kept(read.mtime_ns, np.int64),
        measured=kept(read.measured, np.int32),
        ids=kept(read.ids, np.int64) if id_texts is None else np.zeros(0, np.int64),
        id_texts=id_texts,
        column_values={
            column: (codes.values, _at(keep, codes.array())) for column, codes in read.codes.items()
        },
        extensions=sorted(
            read.extension.values[i] for i in np.unique(_at(keep, read.extension.array())).tolist()
        ),
    )


def count_unlisted(data_dir: Path, size: str, listed: array[int]) -> int:
    """Complete photos of ``size`` under photos/ that photos.csv does not list: a fetch
    killed (SIGKILL, power cut) after downloading them and before rewriting photos.csv,
    which it does at its end. The state knows them; the next fetch lists them. (Paths are
    compared by hash, a folder at a time: a million paths as text would not stay small.)"""
    complete = re.compile(rf"[0-9]+_{re.escape(size)}\.[0-9A-Za-z]+")  # never a temporary
    known = np.sort(np.frombuffer(listed, dtype=np.int64)) if len(listed) else np.zeros(0, np.int64)
    unlisted = 0
    try:
        with os.scandir(data_dir / PHOTOS_DIR) as folders:
            for folder in folders:
                if not folder.is_dir(follow_symlinks=False):
                    continue
                prefix = f"{PHOTOS_DIR}/{folder.name}/"
                names = [name for name in os.listdir(folder.path) if complete.fullmatch(name)]
                hashes = np.fromiter((hash(prefix + name) for name in names), np.int64, len(names))
                found = np.searchsorted(known, hashes)
                found[found == len(known)] = 0
                unlisted += int(np.count_nonzero(known[found] != hashes)) if len(known) else len(names)
    except OSError:
        return 0
    return unlisted


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


def apply_min(label: np.ndarray, names: list[str], minimum: int | None, report: ExportReport) -> np.ndarray:
    """Which photos stay once the taxa with fewer than ``minimum`` photos are left out
    (named in the report)."""
    if not minimum:
        return np.ones(len(label), dtype=bool)
    counts = np.bincount(label, minlength=len(names))
    small = counts < minimum
    report.left_out = sorted(
        (names[i], int(counts[i])) for i in np.flatnonzero(small & (counts > 0)).tolist()
    )
    keep: np.ndarray = ~small[label]
    return keep


def apply_max(
    keep: np.ndarray, label: np.ndarray, group: np.ndarray, read: _Read, maximum: int, report: ExportReport
) -> np.ndarray:
    """At most ``maximum`` photos a taxon, the same for the same data: one photo of each
    group first (groups in hash order), then a second of each, and so on, so the photos kept
    come from as many observations (or observers) as possible.

    The groups' order is a hash of its own, not the split's: the split bounds cut that one,
    so taking the lowest positions first would keep train groups only."""
    names = read.codes["taxon_name"].values
    index = np.flatnonzero(keep)
    taxon, members = label[index], group[index]
    photo = np.frombuffer(read.photo_position, dtype=np.float64)[index]
    cap = np.frombuffer(read.cap_position, dtype=np.float64)[index]
    # each photo's round: its rank within its (taxon, group), by its own hash, then its order
    by_group = np.lexsort((index, photo, members, taxon))
    same = (taxon[by_group][1:] == taxon[by_group][:-1]) & (members[by_group][1:] == members[by_group][:-1])
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    run_start = np.repeat(starts, np.diff(np.append(starts, len(by_group))))
    round_ = np.empty(len(index), dtype=np.int64)
    round_[by_group] = np.arange(len(by_group)) - run_start
    ranked = np.lexsort((index, photo, cap, round_, taxon))
    ranked_taxon = taxon[ranked]
    first = np.searchsorted(ranked_taxon, ranked_taxon, side="left")
    kept = np.zeros(len(keep), dtype=bool)
    kept[index[ranked[np.arange(len(ranked)) - first < maximum]]] = True
    counts = np.bincount(taxon, minlength=len(names))
    report.capped = sorted((names[i], int(counts[i])) for i in np.flatnonzero(counts > maximum).tolist())
    return kept


def _groups_per_label(label: np.ndarray, group: np.ndarray, labels: int) -> np.ndarray:
    """How many distinct groups each label's photos come from (sorted by both: no pairs built)."""
    order = np.lexsort((group, label))
    label, group = label[order], group[order]
    first = np.ones(len(order), dtype=bool)  # the first photo of each (label, group)
    first[1:] = (label[1:] != label[:-1]) | (group[1:] != group[:-1])
    return np.bincount(label[first], minlength=labels)


def count(
    selection: Selection,
    group: np.ndarray,
    observation: np.ndarray,
    options: ExportOptions,
    report: ExportReport,
) -> None:
    """The report's counts: per taxon and split, groups, observations, observers, licences."""
    names = [name for name, _ in options.splits] or [""]
    splits = len(selection.split_names)
    per_taxon = np.bincount(
        selection.label.astype(np.int64) * splits + selection.split, minlength=len(selection.labels) * splits
    ).reshape(len(selection.labels), splits)
    groups = _groups_per_label(selection.label, group, len(selection.labels))
    for i, label in enumerate(selection.labels):
        counts = {name: int(per_taxon[i][s]) for s, name in enumerate(names)}
        report.taxa.append(TaxonCounts(label, counts, int(groups[i])))
        empty = [name for name in names if options.splits and counts[name] == 0]
        if empty:
            report.short.append((label, int(groups[i]), empty))
    report.empty_splits = [name for name, _ in options.splits if report.photos_in(name) == 0]
    report.observations = len(np.unique(observation))
    observers, observer_codes = selection.column_values["observer"]
    report.observers = sorted(observers[i] for i in np.unique(observer_codes).tolist())
    report.groups = len(np.unique(group))
    licences, licence_codes = selection.column_values["license_code"]
    per_licence = np.bincount(licence_codes, minlength=len(licences)).tolist()
    report.licences = [
        LicenceCount(code, n) for code, n in sorted(zip(licences, per_licence, strict=True)) if n
    ]
