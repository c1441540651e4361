"""OUT_DIR's own state: a small file that marks the folder as inatdl's export, and beside
it the list of what inatdl put there (and, for shards, what each holds), so an export
again updates it and never touches a file a user added, another format's export or other
splits. The list is read and written a name at a time: an imagefolder of a million
photos owns a million files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inatdl.errors import ExportError
from inatdl.export.model import ExportOptions
from inatdl.files import atomic_writer, disk_error

STATE_NAME = ".inatdl-export.json"
FILES_NAME = ".inatdl-export-files.txt"  # every file the export owns, sorted, one a line (JSON strings)
PHOTOS_NAME = ".inatdl-export-photos.txt"  # the shards' photo ids, one a line: the summary's counts
STATE_FORMAT = 1
OTHER_OUT_DIR = "export into another folder"  # what to do when OUT_DIR cannot be written


@dataclass
class OutDirState:
    """What a previous export left in OUT_DIR (empty for a new folder)."""

    listed: list[str] = field(default_factory=list)  # its files, when the state names them itself
    file_list: Path | None = None  # else the list of its files (FILES_NAME), read a name at a time
    options: dict[str, Any] | None = None
    format: str = "imagefolder"  # an export made before --format existed was an imagefolder
    shards: dict[str, str] = field(default_factory=dict)  # shard file → fingerprint of its contents
    photos_file: Path | None = None  # the shards' photo ids (PHOTOS_NAME), read an id at a time

    def photo_ids(self) -> Iterator[str]:
        """The photo ids in the previous export's shards, one at a time."""
        if self.photos_file is None:
            return
        try:
            with self.photos_file.open(encoding="utf-8") as lines:
                for line in lines:
                    if photo_id := line.strip():
                        yield photo_id
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise _damaged(self.photos_file, exc) from None

    def file_names(self) -> Iterator[str]:
        """The files the previous export owns, one at a time (never all as Python strings)."""
        if self.file_list is None:
            yield from self.listed
            return
        try:
            with self.file_list.open(encoding="utf-8") as lines:
                for line in lines:
                    name = json.loads(line)
                    if not isinstance(name, str):
                        raise ValueError(f"{line.strip()} is not a file name")
                    if safe_relative(name):
                        yield name
        except (OSError, ValueError) as exc:
            raise _damaged(self.file_list, exc) from None

    @property
    def files(self) -> list[str]:
        """The files the previous export owns, as a list: for the shard formats' few files."""
        return list(self.file_names())


def read_out_dir_state(out_dir: Path, data_dir: Path) -> OutDirState | None:
    """The state of a previous export in ``out_dir``, None for a new or empty folder; an error
    for a file, a folder inside the data dir, or a non-empty folder inatdl did not make."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir} is a file, not a folder; choose a folder for the dataset")
    if is_within(out_dir, data_dir):
        raise ExportError(
            f"{out_dir} is inside the data dir {data_dir}, which export never changes; "
            "choose a folder outside it"
        )
    if not out_dir.exists():
        return None
    state_path = out_dir / STATE_NAME
    if not state_path.is_file():
        # the list of files alone: the first export killed between writing it and the state
        if any(entry.name != FILES_NAME for entry in out_dir.iterdir()):
            raise ExportError(
                f"{out_dir} is not empty and was not made by `inatdl dataset export`; "
                "choose a new or empty folder"
            )
        return None
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        listed = state.get("files", [])  # an export by inatdl before the list had a file of its own
        if state.get("format") != STATE_FORMAT or not isinstance(listed, list):
            raise ValueError("unknown format")
        if "files" not in state and state.get("file_list") != FILES_NAME:
            raise ValueError("no list of files")
        if "files" not in state and not (out_dir / FILES_NAME).is_file():
            raise ValueError(f"{FILES_NAME} is missing")
        options = state.get("options")
        previous = OutDirState(
            listed=[f for f in listed if isinstance(f, str) and safe_relative(f)],
            file_list=None if "files" in state else out_dir / FILES_NAME,
            options=options if isinstance(options, dict) else None,
            format=str(state.get("export_format", "imagefolder")),
            shards={
                str(k): str(v) for k, v in dict(state.get("shards", {})).items() if safe_relative(str(k))
            },
            photos_file=out_dir / PHOTOS_NAME,
        )
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise _damaged(state_path, exc) from None
    # the photo ids read through once now: a damaged list stops the export before it changes anything
    for _ in previous.photo_ids():
        pass
    return previous


def _damaged(path: Path, exc: Exception) -> ExportError:
    return ExportError(f"{path} is damaged ({exc}); delete {path.parent} and export again")


def write_photos(out_dir: Path, photo_ids: Iterable[str]) -> None:
    """The photo ids an export of shards holds, for the next update's counts."""
    with atomic_writer(out_dir / PHOTOS_NAME) as handle:  # line by line: a million ids
        for photo_id in photo_ids:
            handle.write(f"{photo_id}\n")


def check_update(out_dir: Path, previous: OutDirState, options: ExportOptions) -> None:
    """An error when ``out_dir`` holds another format's export, or one drawn with other
    splits: updating it would move photos between splits (test photos into train) under a
    model already trained on the old ones, and an export cut short would leave the two
    schemes mixed."""
    if previous.format != options.format:
        article = "an" if previous.format[:1] in ("a", "e", "i", "o", "u") else "a"
        raise ExportError(
            f"{out_dir} holds {article} {previous.format} export, not {options.format}; export "
            f"{options.format} into a new folder, or delete {out_dir} first"
        )
    before = _split_scheme(previous.options) if previous.options is not None else None
    now = _split_scheme(options_record(options))
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


def options_record(options: ExportOptions) -> dict[str, Any]:
    return {
        "splits": [[name, share] for name, share in options.splits],
        "group_by": options.group_by,
        "seed": options.seed,
        "min_per_taxon": options.min_per_taxon,
        "max_per_taxon": options.max_per_taxon,
    }


def write_state(out_dir: Path, files: Iterable[str], options: ExportOptions, **shards: Any) -> None:
    """Record what inatdl owns in ``out_dir``: ``files`` (sorted, read one at a time) and
    ``shards``, the shard formats' fingerprints, so an update rewrites only the shards whose
    contents changed. The list first, then the state that points at it (a kill between the
    two leaves the state of the step before, whose own list was a part of this one)."""
    with atomic_writer(out_dir / FILES_NAME) as handle:
        for name in files:
            handle.write(json.dumps(name, ensure_ascii=False))
            handle.write("\n")
    state: dict[str, Any] = {
        "made_by": "inatdl dataset export",
        "format": STATE_FORMAT,
        "export_format": options.format,
        "options": options_record(options),
        "file_list": FILES_NAME,  # an inatdl that knows only "files" calls this state damaged
        **shards,
    }
    with atomic_writer(out_dir / STATE_NAME) as handle:  # piece by piece: a shard format's fingerprints
        json.dump(state, handle, indent=0)
        handle.write("\n")


def make_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(exc, out_dir, OTHER_OUT_DIR) from None


def remove(out_dir: Path, relative: str) -> bool:
    """Remove a file inatdl put in ``out_dir``, and the folders it leaves empty; False when
    it was already gone."""
    path = out_dir / relative
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise disk_error(exc, path, OTHER_OUT_DIR) from None
    for parent in path.parents:
        if parent == out_dir or not is_within(parent, out_dir):
            break
        try:
            parent.rmdir()
        except OSError:
            break
    return True


def safe_relative(relative: str) -> bool:
    """True when ``relative`` stays inside the folder it is joined to (a manifest or a state
    file could hold anything)."""
    parts = relative.replace("\\", "/").split("/")
    return (
        bool(relative) and not relative.startswith(("/", "\\")) and ".." not in parts and ":" not in parts[0]
    )


def is_within(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
