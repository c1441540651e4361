"""`dataset export`: the downloaded photos as a dataset that ML tools load as it is.

The data dir is only read: photos.csv with pandas, the photos by hard link (or copy).
OUT_DIR gets split and taxon folders, a metadata.csv beside each set of taxon folders,
README.md (the dataset card) and CREDITS.md, plus a small state file that marks it as
inatdl's and lists what inatdl put there, so an export again updates it: new photos are
added, photos gone from the data dir removed, files nobody asked to change left alone.

pandas is imported here only, and this module only inside the command, so that
`photos fetch` starts without it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from inatdl import __version__
from inatdl.constants import MANIFEST_FILE, PHOTO_SIZES
from inatdl.errors import ExportError
from inatdl.files import atomic_write_text, atomic_writer, disk_error
from inatdl.manifest import obscured_note
from inatdl.photo import EXPORT_COLUMNS
from inatdl.splits import group_key, split_for, unit_hash
from inatdl.sweep import scan_photos

STATE_NAME = ".inatdl-export.json"
STATE_FORMAT = 1
METADATA_NAME = "metadata.csv"
CARD_NAME = "README.md"
CREDITS_NAME = "CREDITS.md"
OTHER_OUT_DIR = "export into another folder"  # what to do when OUT_DIR cannot be written
#: The manifest columns the export needs; the others are carried into metadata.csv as they are.
REQUIRED_COLUMNS = EXPORT_COLUMNS
#: What each licence asks of whoever reuses the photo.
LICENSE_TERMS = {
    "cc0": ("CC0", "cc0", "nothing: a public domain dedication (credit is still courteous)"),
    "cc-by": ("CC BY", "by", "attribution: credit the photographer, link the licence, say if you changed it"),
    "cc-by-sa": ("CC BY-SA", "by-sa", "attribution; share-alike: adaptations under the same licence"),
    "cc-by-nc": ("CC BY-NC", "by-nc", "attribution; non-commercial use only"),
    "cc-by-nd": ("CC BY-ND", "by-nd", "attribution; no derivatives: do not share altered versions"),
    "cc-by-nc-sa": (
        "CC BY-NC-SA",
        "by-nc-sa",
        "attribution; non-commercial use only; share-alike: adaptations under the same licence",
    ),
    "cc-by-nc-nd": (
        "CC BY-NC-ND",
        "by-nc-nd",
        "attribution; non-commercial use only; no derivatives: do not share altered versions",
    ),
}
#: os.link's errors across two file systems or on one without hard links: EINVAL is what
#: Windows gives on FAT and exFAT drives ("[WinError 1] Incorrect function"), ENOSYS some
#: FUSE file systems.
_LINK_FAILURES = {
    errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EACCES,
    errno.EINVAL, errno.ENOSYS,
}  # fmt: skip
#: What Markdown would read as markup in a credit: an underscore only at a word's edge.
_MARKDOWN_MARKUP = re.compile(r"[\\`*<>\[\]]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


@dataclass(frozen=True)
class ExportOptions:
    """What `dataset export` was asked; ``splits`` empty means one flat set, no split folders."""

    splits: tuple[tuple[str, float], ...] = ()
    group_by: str = "observation"
    seed: int = 0
    min_per_taxon: int | None = None
    max_per_taxon: int | None = None
    size: str | None = None
    copy: bool = False
    command: str = "inatdl dataset export"


@dataclass
class TaxonCounts:
    """One taxon of the export: photos per split and the groups they come from."""

    label: str
    photos: dict[str, int]
    groups: int

    @property
    def total(self) -> int:
        return sum(self.photos.values())


@dataclass
class ExportReport:
    """What the export holds and what it left out, for the summary."""

    out_dir: Path
    size: str
    split_names: tuple[str, ...]
    taxa: list[TaxonCounts] = field(default_factory=list)
    left_out: list[tuple[str, int]] = field(default_factory=list)  # taxa under --min-per-taxon
    short: list[tuple[str, int, list[str]]] = field(default_factory=list)  # taxon, groups, empty splits
    capped: list[tuple[str, int]] = field(default_factory=list)  # taxon, photos before the cap
    missing_files: int = 0
    unlisted_files: int = 0  # complete photos on disk a killed fetch did not list in photos.csv
    dropped_columns: list[str] = field(default_factory=list)  # typed differently in two splits
    empty_splits: list[str] = field(default_factory=list)  # asked, but no photo landed there
    added: int = 0
    removed: int = 0
    kept: int = 0
    linked: int = 0
    copied: int = 0

    def photos_in(self, split: str) -> int:
        return sum(t.photos.get(split, 0) for t in self.taxa)

    @property
    def photos(self) -> int:
        return sum(t.total for t in self.taxa)


def export_dataset(data_dir: Path, out_dir: Path, options: ExportOptions) -> ExportReport:
    """Build or update the dataset in ``out_dir`` from the photos of ``data_dir``."""
    manifest = read_manifest(data_dir)
    size = choose_size(manifest, options.size)
    previous = read_out_dir_state(out_dir, data_dir)
    if previous is not None:
        check_same_splits(out_dir, previous, options)
    columns = list(manifest.columns)
    photos = manifest[manifest["size"] == size]
    del manifest  # only the photos of that size are kept in memory
    root = str(data_dir)
    present = [_safe_relative(p) and os.path.isfile(os.path.join(root, p)) for p in photos["path"]]
    report = ExportReport(out_dir, size, tuple(name for name, _ in options.splits))
    report.missing_files = len(present) - sum(present)
    report.unlisted_files = count_unlisted(data_dir, size, set(photos["path"]))
    photos = photos[present]
    if photos.empty:
        raise ExportError(
            f"none of the {report.missing_files:,} {size} photos in {MANIFEST_FILE} is in {data_dir}: "
            "run `inatdl photos fetch` to download them again, or point --data-dir at the data dir"
        )
    photos = _apply_min(photos, options.min_per_taxon, report)
    if photos.empty:
        raise ExportError(
            f"nothing to export: no taxon has {options.min_per_taxon} photos or more; lower --min-per-taxon"
        )
    photos = assign_splits(photos, options)
    photos = _apply_max(photos, options.max_per_taxon, options.seed, report)
    _count(photos, options, report)
    files = _write(data_dir, out_dir, photos, columns, options, previous, report)
    _write_state(out_dir, files, options)
    return report


def read_manifest(data_dir: Path) -> pd.DataFrame:
    """photos.csv as text (every value as written, so metadata.csv repeats it exactly)."""
    path = data_dir / MANIFEST_FILE
    if not path.is_file():
        raise ExportError(
            f"no photos in the data dir {data_dir} (no {MANIFEST_FILE}): run `inatdl photos fetch` "
            "first, or point --data-dir at the data dir"
        )
    try:
        manifest = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except pd.errors.EmptyDataError:
        manifest = pd.DataFrame(columns=list(REQUIRED_COLUMNS))
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ExportError(f"cannot read {path}: {exc}; run `inatdl photos fetch` to rewrite it") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in manifest.columns]
    if missing:
        raise ExportError(
            f"{path} has no column {', '.join(missing)}; run `inatdl photos fetch` to rewrite it"
        )
    if manifest.empty:
        raise ExportError(
            f"no photos in the data dir {data_dir} ({MANIFEST_FILE} is empty): "
            "run `inatdl photos fetch` first"
        )
    return manifest


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


def choose_size(manifest: pd.DataFrame, size: str | None) -> str:
    """The photo size to export: the one fetched, or ``size``; several and none chosen is an error."""
    sizes = sorted(set(manifest["size"]), key=lambda s: (PHOTO_SIZES.get(s, 0), s))
    if size is None:
        if len(sizes) > 1:
            raise ExportError(
                f"the data dir holds photos of several sizes ({', '.join(sizes)}); choose one with --size"
            )
        return str(sizes[0])
    if size not in sizes:
        raise ExportError(
            f"the data dir holds no {size} photos, only {', '.join(sizes)}; choose one with --size"
        )
    return size


def read_out_dir_state(out_dir: Path, data_dir: Path) -> dict[str, Any] | None:
    """The state of a previous export in ``out_dir``, None for a new or empty folder; an error
    for a file, a folder inside the data dir, or a non-empty folder inatdl did not make."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file, not a folder; choose a folder for the dataset")
    if _is_within(out_dir, data_dir):
        raise ExportError(
            f"{out_dir} is inside the data dir {data_dir}, which export never changes; "
            "choose a folder outside it"
        )
    if not out_dir.exists():
        return None
    state_path = out_dir / STATE_NAME
    if not state_path.is_file():
        if any(out_dir.iterdir()):
            raise ExportError(
                f"{out_dir} is not empty and was not made by `inatdl dataset export`; "
                "choose a new or empty folder"
            )
        return None
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state.get("format") != STATE_FORMAT or not isinstance(state.get("files"), list):
            raise ValueError("unknown format")
    except (OSError, ValueError, AttributeError) as exc:
        raise ExportError(f"{state_path} is damaged ({exc}); delete {out_dir} and export again") from None
    return dict(state)


def check_same_splits(out_dir: Path, previous: dict[str, Any], options: ExportOptions) -> None:
    """An error when ``out_dir`` holds an export drawn with other splits: updating it would
    move photos between splits (test photos into train) under a model already trained on
    the old ones, and an export cut short would leave the two schemes mixed."""
    recorded = previous.get("options")
    before = _split_scheme(recorded) if isinstance(recorded, dict) else None
    now = _split_scheme(_options_record(options))
    if before != now:
        raise ExportError(
            f"{out_dir} was exported {_describe_scheme(before)}, not {_describe_scheme(now)}; "
            "updating it would move photos from one split to another: export into a new folder, "
            f"or delete {out_dir} first"
        )


def _split_scheme(record: dict[str, Any]) -> dict[str, Any]:
    """What decides the split of each photo (the group and seed matter only with splits)."""
    splits = record.get("splits")
    if not splits:
        return {"splits": []}
    return {"splits": splits, "group_by": record.get("group_by"), "seed": record.get("seed")}


def _describe_scheme(scheme: dict[str, Any] | None) -> str:
    if scheme is None:
        return "with unknown options"
    if not scheme["splits"]:
        return "without --split"
    shares = ",".join(f"{name}={share:g}" for name, share in scheme["splits"])
    return f"with --split {shares} --group-by {scheme['group_by']} --seed {scheme['seed']}"


def assign_splits(photos: pd.DataFrame, options: ExportOptions) -> pd.DataFrame:
    """Adds ``_group``, ``_position`` (the group's unit hash) and ``_split`` to each photo."""
    groups = [
        group_key(options.group_by, obs, observer)
        for obs, observer in zip(photos["observation_id"].tolist(), photos["observer"].tolist(), strict=True)
    ]
    positions = {key: unit_hash(options.seed, key) for key in set(groups)}
    splits = {key: split_for(p, options.splits) if options.splits else "" for key, p in positions.items()}
    return photos.assign(
        _group=groups,
        _position=[positions[key] for key in groups],
        _split=[splits[key] for key in groups],
    )


def _apply_min(photos: pd.DataFrame, minimum: int | None, report: ExportReport) -> pd.DataFrame:
    if not minimum:
        return photos
    counts = photos.groupby("taxon_name").size()
    small = counts[counts < minimum]
    report.left_out = [(str(label), int(n)) for label, n in small.items()]
    return photos[~photos["taxon_name"].isin(small.index)]


def _apply_max(photos: pd.DataFrame, maximum: int | None, seed: int, report: ExportReport) -> pd.DataFrame:
    """At most ``maximum`` photos a taxon, the same for the same data: one photo of each
    group first (groups in hash order), then a second of each, and so on, so the photos kept
    come from as many observations (or observers) as possible.

    The groups' order is a hash of its own, not ``_position``: the split bounds cut that one,
    so taking the lowest positions first would keep train groups only."""
    if not maximum:
        return photos
    ranked = photos.copy()
    keys = ranked["_group"].tolist()
    order = {key: unit_hash(seed, f"cap:{key}") for key in set(keys)}
    ranked["_cap_position"] = [order[key] for key in keys]
    ranked["_photo_position"] = [unit_hash(seed, f"photo:{pid}") for pid in ranked["photo_id"]]
    ranked = ranked.sort_values(["_group", "_photo_position"], kind="stable")
    ranked["_round"] = ranked.groupby(["taxon_name", "_group"]).cumcount()
    ranked = ranked.sort_values(["taxon_name", "_round", "_cap_position", "_photo_position"], kind="stable")
    counts = ranked.groupby("taxon_name").size()
    report.capped = [(str(label), int(n)) for label, n in counts[counts > maximum].items()]
    kept = ranked.groupby("taxon_name").head(maximum)
    return photos[photos.index.isin(kept.index)]


def _count(photos: pd.DataFrame, options: ExportOptions, report: ExportReport) -> None:
    names = [name for name, _ in options.splits] or [""]
    for label, rows in photos.groupby("taxon_name", sort=True):
        per_split = rows.groupby("_split").size()
        counts = {name: int(per_split.get(name, 0)) for name in names}
        groups = int(rows["_group"].nunique())
        report.taxa.append(TaxonCounts(str(label), counts, groups))
        empty = [name for name in names if options.splits and counts[name] == 0]
        if empty:
            report.short.append((str(label), groups, empty))
    report.empty_splits = [name for name, _ in options.splits if report.photos_in(name) == 0]


def _write(
    data_dir: Path,
    out_dir: Path,
    photos: pd.DataFrame,
    manifest_columns: Iterable[str],
    options: ExportOptions,
    previous: dict[str, Any] | None,
    report: ExportReport,
) -> list[str]:
    """Puts the photos and the text files in place; returns every file inatdl owns there."""
    # photos/<Taxon_folder>/<file> in the data dir → <Taxon_folder>/<file> beside metadata.csv
    file_names = ["/".join(path.rsplit("/", 2)[-2:]) for path in photos["path"].tolist()]
    photos = photos.assign(file_name=file_names, label=photos["taxon_name"])
    targets = [f"{s}/{f}" if s else f for s, f in zip(photos["_split"].tolist(), file_names, strict=True)]
    # No folder for a split without photos: Hugging Face's loader refuses an empty split.
    split_dirs = [name for name, _ in options.splits if name not in report.empty_splits] or [""]
    metadata_files = [f"{s}/{METADATA_NAME}" if s else METADATA_NAME for s in split_dirs]
    files = sorted({*targets, *metadata_files})
    old = [f for f in (previous or {}).get("files", []) if isinstance(f, str) and _safe_relative(f)]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(exc, out_dir, OTHER_OUT_DIR) from None
    # Written first with both lists, so a crash midway leaves nothing that the next export forgets.
    _write_state(out_dir, sorted({*old, *files}), options)
    wanted = set(files)
    for stale in sorted(set(old) - wanted):
        report.removed += _remove(out_dir, stale)
    placer = _Placer(options.copy)
    source_root, target_root = str(data_dir), str(out_dir)
    for source, target in zip(photos["path"].tolist(), targets, strict=True):
        placer.place(os.path.join(source_root, source), os.path.join(target_root, target), report)
    report.linked, report.copied = placer.linked, placer.copied
    per_split = {s: photos[photos["_split"] == s] if options.splits else photos for s in split_dirs}
    columns = ["file_name", "label", *manifest_columns]
    report.dropped_columns = columns_read_differently(per_split, columns)
    columns = [c for c in columns if c not in report.dropped_columns]
    for split, metadata in zip(split_dirs, metadata_files, strict=True):
        with atomic_writer(out_dir / metadata) as handle:
            per_split[split][columns].to_csv(handle, index=False, lineterminator="\n")
    atomic_write_text(out_dir / CARD_NAME, dataset_card(photos, options, report))
    atomic_write_text(out_dir / CREDITS_NAME, credits(photos))
    return files


def columns_read_differently(per_split: dict[str, pd.DataFrame], columns: Sequence[str]) -> list[str]:
    """The columns that a reader inferring types, as Hugging Face's loader does (pandas on
    the first 10,000 rows of each metadata.csv), would type differently in two splits: say
    dates empty throughout a small split. That loader refuses such a dataset, so these
    columns stay in photos.csv only."""
    if len(per_split) < 2:
        return []
    inferred = [
        pd.read_csv(io.StringIO(rows[list(columns)].head(10_000).to_csv(index=False)))
        for rows in per_split.values()
        if not rows.empty
    ]
    # the kind of values, as Arrow types what pandas read (True beside empty cells: booleans)
    kinds = [{c: pd.api.types.infer_dtype(read[c], skipna=True) for c in columns} for read in inferred]
    return [c for c in columns if len({kind[c] for kind in kinds}) > 1]


class _Placer:
    """Hard links while the file system allows them, copies after (or with --copy)."""

    def __init__(self, copy: bool) -> None:
        self.copy = copy
        self.can_link = not copy
        self.linked = 0
        self.copied = 0
        self.folders: set[str] = set()

    def place(self, source: str, target: str, report: ExportReport) -> None:
        """Plain-string paths: pathlib costs more than the links themselves at 36,000 photos."""
        try:
            if self._current(source, target):
                report.kept += 1
                return
            folder, name = os.path.split(target)
            if folder not in self.folders:
                os.makedirs(folder, exist_ok=True)
                self.folders.add(folder)
            temporary = os.path.join(folder, f".{name}.part")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            if self.can_link:
                try:
                    os.link(source, temporary)
                    self.linked += 1
                except OSError as exc:
                    if exc.errno not in _LINK_FAILURES:
                        raise
                    self.can_link = False
            if not self.can_link:
                shutil.copyfile(source, temporary)
                self.copied += 1
            # A new name replaces the old one: a file linked to the data dir is never written into.
            os.replace(temporary, target)
            report.added += 1
        except OSError as exc:
            raise disk_error(exc, Path(target), OTHER_OUT_DIR) from None

    def _current(self, source: str, target: str) -> bool:
        """True when ``target`` already holds this photo (and is a copy when copies are asked)."""
        try:
            there = os.stat(target)
        except FileNotFoundError:
            return False
        here = os.stat(source)
        if there.st_size != here.st_size:
            return False
        same_file = (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino)
        return not (self.copy and same_file)


def _remove(out_dir: Path, relative: str) -> int:
    """Remove a file inatdl put in ``out_dir``, and the folders it leaves empty."""
    path = out_dir / relative
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise disk_error(exc, path, OTHER_OUT_DIR) from None
    for parent in path.parents:
        if parent == out_dir or not _is_within(parent, out_dir):
            break
        try:
            parent.rmdir()
        except OSError:
            break
    return 0 if relative.endswith(METADATA_NAME) else 1


def _options_record(options: ExportOptions) -> dict[str, Any]:
    return {
        "splits": [[name, share] for name, share in options.splits],
        "group_by": options.group_by,
        "seed": options.seed,
        "min_per_taxon": options.min_per_taxon,
        "max_per_taxon": options.max_per_taxon,
    }


def _write_state(out_dir: Path, files: Sequence[str], options: ExportOptions) -> None:
    state = {
        "made_by": "inatdl dataset export",
        "format": STATE_FORMAT,
        "options": _options_record(options),
        "files": list(files),
    }
    atomic_write_text(out_dir / STATE_NAME, json.dumps(state, indent=0) + "\n")


def _safe_relative(relative: str) -> bool:
    """True when ``relative`` stays inside the folder it is joined to (a manifest or a state
    file could hold anything)."""
    parts = relative.replace("\\", "/").split("/")
    return (
        bool(relative) and not relative.startswith(("/", "\\")) and ".." not in parts and ":" not in parts[0]
    )


def _is_within(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


# The dataset card and the credits --------------------------------------------------------


def dataset_card(photos: pd.DataFrame, options: ExportOptions, report: ExportReport) -> str:
    """README.md: what the dataset holds, how it was made, how to load it, what the licences ask."""
    names = list(report.split_names)
    title = report.out_dir.resolve().name
    observations = photos["observation_id"].nunique()
    observers = photos["observer"].nunique()
    lines = [
        f"# {title}",
        "",
        f"{report.photos:,} photos of {len(report.taxa):,} taxa from "
        f"[iNaturalist](https://www.inaturalist.org), from {observations:,} observations "
        f"by {observers:,} observers, at size `{report.size}`. "
        f"Made with inatdl {__version__}:",
        "",
        "```",
        options.command,
        "```",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import ClassLabel, load_dataset",
        f'dataset = load_dataset("imagefolder", data_dir={_literal(title)})',
        'names = sorted({label for split in dataset.values() for label in split.unique("label")})',
        'dataset = dataset.cast_column("label", ClassLabel(names=names))  # the same ids in every split',
        "```",
        "",
        "`label` is the taxon's accepted scientific name; every column of `metadata.csv` "
        "(licence, attribution, observer, observation, coordinates, date) comes along. "
        "(`class_encode_column` would number each split's own taxa: with a taxon missing "
        "from a split, the same id would mean another taxon there.)",
    ]
    lines += obscured_note(photos.get("coordinates_obscured"))
    if report.dropped_columns:
        lines += [
            "",
            f"Not in `metadata.csv`: {', '.join(report.dropped_columns)}, which would be read as "
            "different types in different splits (the loader refuses that).",
        ]
    if names:
        shares = ", ".join(f"{name} {share:g}" for name, share in options.splits)
        lines += ["", *_torchvision_lines(title, report)]
        lines += [
            "",
            "## Splits",
            "",
            f"Drawn per {options.group_by}: the photos of one {options.group_by} are all in the same split. "
            f"Each {options.group_by} is placed by a hash of its id and the seed ({options.seed}) "
            f"against the shares {shares}, so exporting again gives the same splits and new "
            "photos never move old ones.",
        ]
    else:
        lines += ["", f"With torchvision: `ImageFolder({_literal(title)})`, one class a taxon folder."]
    lines += ["", "## Photos per taxon", ""]
    header = ["taxon", *names, "total" if names else "photos", f"{options.group_by}s"]
    lines += [_row(header), _row(["---"] + ["---:"] * (len(header) - 1))]
    for taxon in report.taxa:
        counts = [f"{taxon.photos[n]:,}" for n in names]
        lines.append(_row([taxon.label, *counts, f"{taxon.total:,}", f"{taxon.groups:,}"]))
    if names:
        totals = [f"{report.photos_in(n):,}" for n in names]
        lines.append(_row(["**all**", *totals, f"{report.photos:,}", f"{photos['_group'].nunique():,}"]))
    if report.empty_splits:
        empty = " or ".join(report.empty_splits)
        lines += ["", f"No photo landed in {empty}: no folder for {'them' if ' or ' in empty else 'it'}."]
    if report.short:
        short = "; ".join(
            f"{label} ({groups} {options.group_by}{'s' if groups != 1 else ''}, none in {', '.join(empty)})"
            for label, groups, empty in report.short
        )
        lines += ["", f"Taxa with too few groups for every split: {short}."]
    if report.left_out:
        left_out = ", ".join(f"{label} ({n})" for label, n in report.left_out)
        lines += ["", f"Left out, fewer than {options.min_per_taxon} photos: {left_out}."]
    if report.capped:
        capped = ", ".join(f"{label} (of {n})" for label, n in report.capped)
        lines += ["", f"Kept at most {options.max_per_taxon} photos of {capped}, one of each group first."]
    lines += [
        "",
        "## Licences",
        "",
        "Every photo keeps its own licence; each is in `metadata.csv` (`license_code`, `attribution`) "
        f"and in [{CREDITS_NAME}]({CREDITS_NAME}) with a link to its observation.",
        "",
        _row(["licence", "photos", "what it asks of you"]),
        _row(["---", "---:", "---"]),
    ]
    for code, count in sorted(photos["license_code"].value_counts().items()):
        name, slug, terms = LICENSE_TERMS.get(str(code), (str(code), "", "see the licence"))
        link = (
            "https://creativecommons.org/publicdomain/zero/1.0/"
            if slug == "cc0"
            else f"https://creativecommons.org/licenses/{slug}/4.0/"
        )
        lines.append(_row([f"[{name}]({link})" if slug else name, f"{count:,}", terms]))
    codes = set(photos["license_code"])
    if any("nc" in str(c).split("-") for c in codes):
        lines += [
            "",
            "NC: no commercial use of these photos. For a commercial model, leave them out by "
            "`license_code`, or fetch into a data dir of its own with `inatdl --data-dir DIR photos "
            "fetch --license cc0,cc-by,cc-by-sa,cc-by-nd` and export that: a data dir keeps every "
            "photo it downloaded, whatever the `--license` of later runs.",
        ]
    if any("nd" in str(c).split("-") for c in codes):
        lines += [
            "",
            "ND: sharing altered versions (crops, augmented images) is not allowed; whether a trained "
            "model is a derivative is unsettled, so check before publishing one.",
        ]
    lines += [
        "",
        "Publishing this dataset or a model trained on it: credit each photographer as in "
        f"[{CREDITS_NAME}]({CREDITS_NAME}) and keep each photo's licence with it.",
        "",
    ]
    return "\n".join(lines)


def _torchvision_lines(title: str, report: ExportReport) -> list[str]:
    """How to load the splits with torchvision, whose ImageFolder numbers the classes of each
    split from its own taxon folders: one taxon missing from a split shifts the ids there."""
    present = [name for name in report.split_names if name not in report.empty_splits]
    first = present[0]
    intro = f"With torchvision: `ImageFolder({_literal(f'{title}/{first}')})`, one class a taxon folder"
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
        f"{first} = ImageFolder({_literal(f'{title}/{first}')})",
    ]
    for other in present[1:]:
        lines += [
            f"{other} = ImageFolder({_literal(f'{title}/{other}')})",
            f"{other}.target_transform = "
            f"[{first}.class_to_idx[name] for name in {other}.classes].__getitem__",
        ]
    return [*lines, "```"]


def _literal(text: str) -> str:
    """``text`` as a Python string literal, for the card's code: a folder may be named ``a"b\\c``."""
    return json.dumps(text, ensure_ascii=False)


def credits(photos: pd.DataFrame) -> str:
    """CREDITS.md: every photo, its attribution, licence and observation."""
    lines = [
        "# Credits",
        "",
        "Every photo of this dataset, from iNaturalist, with its photographer's attribution and licence.",
        "",
        _row(["photo", "taxon", "attribution", "licence", "observation"]),
        _row(["---:", "---", "---", "---", "---"]),
    ]
    ordered = photos.sort_values(["taxon_name", "photo_id"], key=_natural, kind="stable")
    columns = ("photo_id", "taxon_name", "attribution", "license_code", "observation_url")
    lines += [
        _row([photo, _plain(taxon), _plain(attribution), licence, url])
        for photo, taxon, attribution, licence, url in zip(
            *(ordered[c].tolist() for c in columns), strict=True
        )
    ]
    return "\n".join(lines) + "\n"


def _plain(text: str) -> str:
    """``text`` shown as written by Markdown: a name such as ``<Jane>`` or ``*JD*`` would
    otherwise vanish or turn italic in the credit (an underscore inside a word is safe)."""
    return _MARKDOWN_MARKUP.sub(lambda match: "\\" + match.group(0), text)


def _natural(column: pd.Series) -> pd.Series:
    """Numbers as numbers when sorting (photo 9 before photo 10)."""
    numbers = pd.to_numeric(column, errors="coerce")
    return column if numbers.isna().any() else numbers


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
