"""The export's writers, one module a format, behind one interface (as img2dataset's
files, parquet and webdataset writers): a selection in, files in OUT_DIR out.

A format is a module here named for it that defines ``WRITER``, a ``Writer`` subclass; the
module is imported only when its format is asked (pyarrow only for parquet).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inatdl.export.model import ExportOptions, ExportReport
from inatdl.export.outdir import OutDirState

if TYPE_CHECKING:  # numpy is imported by the export alone, never by the CLI's start
    from inatdl.export.selected import Selection
    from inatdl.export.selection import Measure

#: Every format, the default first: the modules of this package.
FORMATS = tuple(
    sorted(
        (m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")),
        key=lambda name: (name != "imagefolder", name),
    )
)


#: The files every format writes beside its data (card, credits, croissant.json).
OWNED_TEXTS = ("README.md", "CREDITS.md", "croissant.json")


@dataclass(frozen=True)
class WriteContext:
    """Everything a writer reads; it adds what it did to ``report``."""

    data_dir: Path
    out_dir: Path
    selection: Selection
    options: ExportOptions
    report: ExportReport
    previous: OutDirState | None


@dataclass(frozen=True)
class CroissantParts:
    """A format's part of croissant.json: its file objects and file sets, and the source
    of each field of the record set (label, photo_id, license_code, attribution; image,
    unless the images are files of their own: then ``image_files`` names their file set,
    ``image_key`` the source of the key a photo's image is found by, and ``key_in_name``
    the regex that finds that key in an image file's name)."""

    distribution: list[dict[str, Any]]
    sources: dict[str, dict[str, Any]]
    label_type: str = "sc:Text"  # the label as a name, or as its index in the ClassLabel
    image_files: str | None = None
    image_key: dict[str, Any] | None = None
    key_in_name: str = "^(.*)$"


class Writer(ABC):
    """One format. The export calls ``plan``, records its files in OUT_DIR's state, then
    calls ``write``; the card and croissant.json read the other methods."""

    def __init__(self, context: WriteContext) -> None:
        self.context = context

    @classmethod
    def measure(cls, columns: tuple[str, ...]) -> Measure | None:
        """What the selection should measure of each row as it reads photos.csv (the
        shards' cut needs each sample's bytes before any row is read back); None: nothing."""
        return None

    @abstractmethod
    def plan(self) -> Iterable[str]:
        """Every file (relative to OUT_DIR) this export will own, before anything is written
        (in any order; read once, before ``write``)."""

    @abstractmethod
    def write(self, stale: Iterable[str], meanwhile: Callable[[], None]) -> None:
        """Put the data files in OUT_DIR and remove ``stale`` (the previous export's files
        that this one does not own), counting the photos added, kept and removed; call
        ``meanwhile`` once (work of the export's own, done while other processes write)."""

    def state(self) -> dict[str, Any]:
        """What the format needs in OUT_DIR's state to update it next time."""
        return {}

    @abstractmethod
    def data_files(self) -> dict[str, str]:
        """Each split's data files as a pattern relative to OUT_DIR, for the card's configs."""

    def features(self) -> list[dict[str, Any]] | None:
        """The hub's ``dataset_info.features`` when the loader cannot infer them."""
        return None

    @abstractmethod
    def loading(self, folder: str) -> list[str]:
        """The card's "Loading" section: how to read the dataset in ``folder``."""

    @abstractmethod
    def croissant(self) -> CroissantParts:
        """The files and field sources for croissant.json."""


def writer_class(format_: str) -> type[Writer]:
    """The writer of ``format_``, its module imported now."""
    module = importlib.import_module(f"{__name__}.{format_}")
    writer: type[Writer] = module.WRITER
    return writer


def literal(text: str) -> str:
    """``text`` as a Python string literal, for the card's code: a folder may be named ``a"b\\c``."""
    return json.dumps(text, ensure_ascii=False)
