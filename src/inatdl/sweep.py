"""The start-of-run sweep of photos/, and the one scan of photos/ it shares with export.

photos/ holds one folder a taxon, each holding complete photos under their final names and,
beside them, what unfinished downloads left (parts.py). The scan sorts those files; the
sweep removes what no download can use and tells the run which .part files to resume and
which photo files the state does not know.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from inatdl.constants import PHOTOS_DIR
from inatdl.parts import PART, PART_INFO, PART_INFO_SUFFIX, PART_SUFFIX, classify, settle
from inatdl.state import Store

log = logging.getLogger("inatdl")


@dataclass
class PhotosScan:
    """The files under photos/<folder>/, by photo path relative to the data dir."""

    complete: set[str] = field(default_factory=set)  # under a photo's final name
    parts: set[str] = field(default_factory=set)  # photo paths with a .part beside them
    infos: set[str] = field(default_factory=set)  # photo paths with a .part.info beside them
    temporaries: list[str] = field(default_factory=list)  # file paths of .part.info being written


def scan_photos(data_dir: Path) -> PhotosScan:
    """Every file one folder down photos/ (none when there is no photos/), sorted by what
    it is; raises OSError when a folder cannot be read."""
    scan = PhotosScan()
    photos = data_dir / PHOTOS_DIR
    if not photos.is_dir():
        return scan
    for folder in os.scandir(photos):
        if not folder.is_dir(follow_symlinks=False):
            continue
        prefix = f"{PHOTOS_DIR}/{folder.name}/"
        names = os.listdir(folder.path)  # names alone, in C: a million in a fraction of a second
        unfinished = [name for name in names if PART_SUFFIX in name]
        if unfinished:
            names = list(set(names).difference(unfinished))
        scan.complete.update(map(prefix.__add__, names))  # photos (classify's PHOTO): most files
        for name in unfinished:
            kind = classify(name)
            if kind == PART:
                scan.parts.add(prefix + name.removesuffix(PART_SUFFIX))
            elif kind == PART_INFO:
                scan.infos.add(prefix + name.removesuffix(PART_INFO_SUFFIX))
            else:
                scan.temporaries.append(os.path.join(folder.path, name))
    return scan


@dataclass(frozen=True)
class OnDisk:
    """What the sweep at the start of a run found under photos/."""

    kept_parts: set[str]  # photo paths whose .part a download may resume (download.py)
    untracked: set[str]  # photo files the state does not name as downloaded (usually none)


def sweep_photos(data_dir: Path, store: Store) -> OnDisk:
    """Remove temporaries a crash left, and mark photos whose file was deleted as to do.

    A photo's .part is kept when its .part.info names the body it holds (parts.py), for
    the download to resume it with If-Range. The files the state does not name as
    downloaded are the only ones a photo new to the state can find on disk (a state file
    moved away, a run killed before recording its last photos): the workers look for the
    others' files only when they are in that set, not once a photo.
    """
    for leftover in data_dir.glob(".*.part"):  # of photos.csv or taxa.csv
        leftover.unlink()
    scan = scan_photos(data_dir)
    for temporary in scan.temporaries:
        os.unlink(temporary)
    present = scan.complete
    kept = settle(data_dir, scan.parts, scan.infos, present)
    done = store.done_path_set()
    missing = done - present
    if missing:
        log.info("%d downloaded photos are no longer on disk; fetching them again", len(missing))
        store.mark_missing([(pid, size) for pid, size, path in store.done_paths() if path in missing])
    return OnDisk(kept, present - done)
