"""Which photos an export holds and which split each goes to: photos.csv read as written,
one size, the files present, --min-per-taxon, the splits by group, --max-per-taxon.

The same photos and splits whatever the format: every writer gets this selection.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from inatdl.constants import MANIFEST_FILE, PHOTO_SIZES
from inatdl.errors import ExportError
from inatdl.export.model import ExportOptions, ExportPhoto, ExportReport, LicenceCount, TaxonCounts
from inatdl.export.outdir import safe_relative
from inatdl.photo import EXPORT_COLUMNS
from inatdl.splits import group_key, split_for, unit_hash
from inatdl.sweep import scan_photos

#: The manifest columns the export needs; the others are carried into the dataset as they are.
REQUIRED_COLUMNS = EXPORT_COLUMNS
#: Columns whose values repeat from photo to photo: each value is kept once in memory
#: (a million photos' rows in a third less).
REPEATING_COLUMNS = frozenset(
    {
        "taxon_id", "taxon_name", "observed_taxon_id", "observed_taxon_name", "size", "license_code",
        "attribution", "observer", "quality_grade", "observed_on", "positional_accuracy",
        "coordinates_obscured",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Manifest:
    """photos.csv as text: its columns, and the rows of each size (every value as written)."""

    columns: tuple[str, ...]
    rows_by_size: dict[str, list[tuple[str, ...]]]

    def index(self, column: str) -> int:
        return self.columns.index(column)


@dataclass(frozen=True)
class Selection:
    """The photos to export, in photos.csv's order, with the manifest's columns."""

    columns: tuple[str, ...]
    photos: list[ExportPhoto]


def select(data_dir: Path, options: ExportOptions, report_for: Path) -> tuple[Selection, ExportReport]:
    """The photos of ``data_dir`` to export under ``options``, and the report's counts."""
    manifest = read_manifest(data_dir)
    size = choose_size(manifest, options.size)
    rows = manifest.rows_by_size[size]
    del manifest.rows_by_size[size]  # only the photos of that size are kept in memory
    manifest.rows_by_size.clear()
    report = ExportReport(report_for, size, tuple(name for name, _ in options.splits), format=options.format)
    path_at = manifest.index("path")
    root = str(data_dir)
    present = [
        row
        for row in rows
        if safe_relative(row[path_at]) and os.path.isfile(os.path.join(root, row[path_at]))
    ]
    report.missing_files = len(rows) - len(present)
    report.unlisted_files = count_unlisted(data_dir, size, {row[path_at] for row in rows})
    del rows
    if not present:
        raise ExportError(
            f"none of the {report.missing_files:,} {size} photos in {MANIFEST_FILE} is in {data_dir}: "
            "run `inatdl photos fetch` to download them again, or point --data-dir at the data dir"
        )
    photos = _as_photos(manifest, present, options)
    photos = apply_min(photos, options.min_per_taxon, report)
    if not photos:
        raise ExportError(
            f"nothing to export: no taxon has {options.min_per_taxon} photos or more; lower --min-per-taxon"
        )
    photos = apply_max(photos, options.max_per_taxon, options.seed, report)
    selection = Selection(manifest.columns, photos)
    count(selection, options, report)
    return selection, report


def read_manifest(data_dir: Path) -> Manifest:
    """photos.csv as text (every value as written, so the dataset repeats it exactly)."""
    path = data_dir / MANIFEST_FILE
    if not path.is_file():
        raise ExportError(
            f"no photos in the data dir {data_dir} (no {MANIFEST_FILE}): run `inatdl photos fetch` "
            "first, or point --data-dir at the data dir"
        )
    rows_by_size: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            columns = tuple(next(reader, REQUIRED_COLUMNS))
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise ExportError(
                    f"{path} has no column {', '.join(missing)}; run `inatdl photos fetch` to rewrite it"
                )
            size_at, width = columns.index("size"), len(columns)
            once: list[dict[str, str]] = [{} for _ in columns]
            shared = [(i, once[i].setdefault) for i, c in enumerate(columns) if c in REPEATING_COLUMNS]
            for row in reader:
                if not row:
                    continue
                if len(row) > width:
                    raise ValueError(f"line {reader.line_num} has {len(row)} fields, not {width}")
                if len(row) < width:
                    row += [""] * (width - len(row))
                for i, keep_once in shared:
                    row[i] = keep_once(row[i], row[i])
                rows_by_size[row[size_at]].append(tuple(row))
    except (OSError, ValueError, csv.Error) as exc:
        raise ExportError(f"cannot read {path}: {exc}; run `inatdl photos fetch` to rewrite it") from None
    if not rows_by_size:
        raise ExportError(
            f"no photos in the data dir {data_dir} ({MANIFEST_FILE} is empty): "
            "run `inatdl photos fetch` first"
        )
    return Manifest(columns, dict(rows_by_size))


def count_unlisted(data_dir: Path, size: str, listed: set[str]) -> int:
    """Complete photos of ``size`` under photos/ that photos.csv does not list: a fetch
    killed (SIGKILL, power cut) after downloading them and before rewriting photos.csv,
    which it does at its end. The state knows them; the next fetch lists them."""
    complete = re.compile(rf"[0-9]+_{re.escape(size)}\.[0-9A-Za-z]+")  # never a temporary
    try:
        photos = scan_photos(data_dir).complete
    except OSError:
        return 0
    return sum(1 for path in photos if complete.fullmatch(path.rpartition("/")[2]) and path not in listed)


def choose_size(manifest: Manifest, size: str | None) -> str:
    """The photo size to export: the one fetched, or ``size``; several and none chosen is an error."""
    sizes = sorted(manifest.rows_by_size, key=lambda s: (PHOTO_SIZES.get(s, 0), s))
    if size is None:
        if len(sizes) > 1:
            raise ExportError(
                f"the data dir holds photos of several sizes ({', '.join(sizes)}); choose one with --size"
            )
        return sizes[0]
    if size not in sizes:
        raise ExportError(
            f"the data dir holds no {size} photos, only {', '.join(sizes)}; choose one with --size"
        )
    return size


def _as_photos(
    manifest: Manifest, rows: Iterable[tuple[str, ...]], options: ExportOptions
) -> list[ExportPhoto]:
    """Each row as a photo with its group and split: a group is placed by a hash of its key
    and the seed alone, so the same data always gives the same splits."""
    at = {
        name: manifest.index(name)
        for name in ("photo_id", "taxon_name", "path", "observation_id", "observer")
    }
    uuid_at = manifest.columns.index("observation_uuid") if "observation_uuid" in manifest.columns else None
    splits: dict[str, str] = {}
    keys: dict[str, str] = {}
    photos = []
    for row in rows:
        observation = row[at["observation_id"]] or (row[uuid_at] if uuid_at is not None else "")
        key = group_key(options.group_by, observation, row[at["observer"]])
        if key not in splits:
            splits[key] = split_for(unit_hash(options.seed, key), options.splits) if options.splits else ""
            keys[key] = key
        photos.append(  # one key object a group, however many photos it has
            ExportPhoto(
                row, row[at["photo_id"]], row[at["taxon_name"]], row[at["path"]], keys[key], splits[key]
            )
        )
    return photos


def apply_min(photos: list[ExportPhoto], minimum: int | None, report: ExportReport) -> list[ExportPhoto]:
    """Without the taxa that have fewer than ``minimum`` photos (named in the report)."""
    if not minimum:
        return photos
    counts = Counter(photo.label for photo in photos)
    small = {label for label, n in counts.items() if n < minimum}
    report.left_out = sorted((label, counts[label]) for label in small)
    return [photo for photo in photos if photo.label not in small]


def apply_max(
    photos: list[ExportPhoto], maximum: int | None, seed: int, report: ExportReport
) -> list[ExportPhoto]:
    """At most ``maximum`` photos a taxon, the same for the same data: one photo of each
    group first (groups in hash order), then a second of each, and so on, so the photos kept
    come from as many observations (or observers) as possible.

    The groups' order is a hash of its own, not the split's: the split bounds cut that one,
    so taking the lowest positions first would keep train groups only."""
    if not maximum:
        return photos
    by_group: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    for index, photo in enumerate(photos):
        by_group[(photo.label, photo.group)].append((unit_hash(seed, f"photo:{photo.photo_id}"), index))
    ranked: dict[str, list[tuple[int, float, float, int]]] = defaultdict(list)
    for (label, group), members in by_group.items():
        group_position = unit_hash(seed, f"cap:{group}")
        for round_, (photo_position, index) in enumerate(sorted(members)):
            ranked[label].append((round_, group_position, photo_position, index))
    kept: set[int] = set()
    for label, order in ranked.items():
        if len(order) > maximum:
            report.capped.append((label, len(order)))
        kept.update(index for *_, index in sorted(order)[:maximum])
    report.capped.sort()
    return [photo for index, photo in enumerate(photos) if index in kept]


def count(selection: Selection, options: ExportOptions, report: ExportReport) -> None:
    """The report's counts: per taxon and split, groups, observations, observers, licences."""
    names = [name for name, _ in options.splits] or [""]
    per_taxon: dict[str, Counter[str]] = defaultdict(Counter)
    groups: dict[str, set[str]] = defaultdict(set)
    observation_at, observer_at = (
        selection.columns.index("observation_id"),
        selection.columns.index("observer"),
    )
    licence_at = selection.columns.index("license_code")
    observations: set[str] = set()
    observers: set[str] = set()
    licences: Counter[str] = Counter()
    for photo in selection.photos:
        per_taxon[photo.label][photo.split] += 1
        groups[photo.label].add(photo.group)
        observations.add(photo.values[observation_at])
        observers.add(photo.values[observer_at])
        licences[photo.values[licence_at]] += 1
    for label in sorted(per_taxon):
        counts = {name: per_taxon[label][name] for name in names}
        report.taxa.append(TaxonCounts(label, counts, len(groups[label])))
        empty = [name for name in names if options.splits and counts[name] == 0]
        if empty:
            report.short.append((label, len(groups[label]), empty))
    report.empty_splits = [name for name, _ in options.splits if report.photos_in(name) == 0]
    report.observations, report.observers = len(observations), sorted(observers)
    report.groups = len(set().union(*groups.values()))
    report.licences = [LicenceCount(code, n) for code, n in sorted(licences.items())]
