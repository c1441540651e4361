"""The data passed between the export's stages: the options, one photo as exported, and the
report that the summary, the card, the credits and croissant.json are written from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: The formats `dataset export --format` writes; the first is the default.
FORMATS = ("imagefolder", "webdataset", "parquet")
#: --shard-size's default: what the hub and img2dataset suggest for a tar or a Parquet file.
DEFAULT_SHARD_SIZE = 500 * 1000**2


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
    format: str = "imagefolder"
    shard_size: int = DEFAULT_SHARD_SIZE
    command: str = "inatdl dataset export"


@dataclass(frozen=True, slots=True)
class ExportPhoto:
    """One photo as a writer gets it: its photos.csv row as written (in the manifest's
    column order, read back from photos.csv), and what the selection decided for it."""

    values: tuple[str, ...]
    photo_id: str
    label: str
    label_index: int  # its line in labels.txt, the ClassLabel's index: the same in every split
    path: str  # relative to the data dir, as in photos.csv
    split: str  # "" without --split
    size: int  # its file's size and modification time, as the selection found them
    mtime_ns: int


@dataclass
class TaxonCounts:
    """One taxon of the export: photos per split and the groups they come from."""

    label: str
    photos: dict[str, int]
    groups: int

    @property
    def total(self) -> int:
        return sum(self.photos.values())


@dataclass(frozen=True)
class LicenceCount:
    """One licence of the export and how many photos carry it."""

    code: str
    photos: int


@dataclass
class ExportReport:
    """What the export holds, what it left out and what it changed: for the summary, the
    card, the credits and croissant.json."""

    out_dir: Path
    size: str
    split_names: tuple[str, ...]
    format: str = "imagefolder"
    taxa: list[TaxonCounts] = field(default_factory=list)
    licences: list[LicenceCount] = field(default_factory=list)
    observations: int = 0
    observers: list[str] = field(default_factory=list)  # their logins, sorted
    groups: int = 0
    left_out: list[tuple[str, int]] = field(default_factory=list)  # taxa under --min-per-taxon
    short: list[tuple[str, int, list[str]]] = field(default_factory=list)  # taxon, groups, empty splits
    capped: list[tuple[str, int]] = field(default_factory=list)  # taxon, photos before the cap
    missing_files: int = 0
    unlisted_files: int = 0  # complete photos on disk a killed fetch did not list in photos.csv
    fetch_running: str | None = None  # the pid of a `photos fetch` running in the data dir
    dropped_columns: list[str] = field(default_factory=list)  # typed differently in two splits
    empty_splits: list[str] = field(default_factory=list)  # asked, but no photo landed there
    added: int = 0
    removed: int = 0
    kept: int = 0
    linked: int = 0
    copied: int = 0
    shards_written: int = 0
    shards_kept: int = 0

    def photos_in(self, split: str) -> int:
        return sum(t.photos.get(split, 0) for t in self.taxa)

    @property
    def photos(self) -> int:
        return sum(t.total for t in self.taxa)

    @property
    def labels(self) -> list[str]:
        """The labels in index order: sorted names, the same in every split."""
        return [t.label for t in self.taxa]
