"""`inatdl opendata sync`: the four tables downloaded (or found unchanged), then the
columnar copy made when any of them changed; the dump's date said."""

from __future__ import annotations

import email.utils
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import requests

from inatdl.client import Timeout
from inatdl.clock import Clock
from inatdl.errors import DiskError
from inatdl.files import disk_error
from inatdl.opendata.columnar import Copy, current_copy, make_copy, remove_leftovers
from inatdl.opendata.download import (
    ELSEWHERE,
    Remote,
    download_table,
    head_table,
    is_current,
    part_bytes,
)
from inatdl.opendata.tables import TABLES
from inatdl.state import DataDirLock
from inatdl.units import format_size

# The columnar copy takes about as much disk as the gzip'd tables (measured on the
# synthetic dump of benchmarks/opendata.py), and DuckDB spills a little more while copying.
COPY_DISK_SHARE = 1.0
NOMINAL_DOWNLOAD_RATE = 20_000_000  # bytes a second, to tell the time a first sync needs
SYNC_LOCK_FILE = "sync.lock"


class SyncReporter(Protocol):
    """Where sync's news goes: the plan before downloading, then bytes as they come."""

    def say(self, text: str) -> None: ...

    def table(self, table: str, total: int | None, already: int) -> Callable[[int], None]: ...

    def done(self) -> None: ...


@dataclass
class SyncReport:
    """What a sync did."""

    copy: Copy
    downloaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    copied: bool = False


def needs(remotes: list[Remote], folder: Path) -> tuple[int, int]:
    """(bytes still to download, disk they and the columnar copy take) for these tables."""
    to_download = sum((r.length or 0) - part_bytes(folder, r) for r in remotes if not is_current(folder, r))
    tables = sum(r.length or 0 for r in remotes)
    return to_download, to_download + int(tables * COPY_DISK_SHARE)


def dump_date(remotes: list[Remote]) -> str:
    """The dump's date: the newest Last-Modified of its tables, as YYYY-MM-DD."""
    dates = [email.utils.parsedate_to_datetime(r.last_modified) for r in remotes if r.last_modified]
    return max(dates).date().isoformat() if dates else "unknown"


def sync(
    session: requests.Session,
    base_url: str,
    folder: Path,
    clock: Clock,
    reporter: SyncReporter,
    timeout: Timeout,
) -> SyncReport:
    """Bring ``folder`` up to date with the open data at ``base_url``; one sync a folder at
    a time (a second one would write the same parts and copy)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(exc, folder, ELSEWHERE) from exc
    with DataDirLock(folder, SYNC_LOCK_FILE, "or use another --open-data-dir"):
        return _sync(session, base_url, folder, clock, reporter, timeout)


def _sync(
    session: requests.Session,
    base_url: str,
    folder: Path,
    clock: Clock,
    reporter: SyncReporter,
    timeout: Timeout,
) -> SyncReport:
    remove_leftovers(folder)
    remotes = [head_table(session, base_url, table, timeout, clock) for table in TABLES]
    previous = current_copy(folder)
    to_download, disk = needs(remotes, folder)
    if to_download:
        free = shutil.disk_usage(folder).free
        if previous is None:
            minutes = to_download / NOMINAL_DOWNLOAD_RATE / 60
            took = f"about {minutes:.0f} min" if minutes >= 1 else "under a minute"
            reporter.say(
                f"First sync: {format_size(to_download)} to download and about {format_size(disk)} "
                f"of disk in {folder} (the tables and their columnar copy); {took} at "
                f"{NOMINAL_DOWNLOAD_RATE // 1_000_000} MB/s, then the copy. {format_size(free)} free."
            )
        if free < disk:
            raise DiskError(
                f"the disk holding {folder} has {format_size(free)} free, and the open data needs about "
                f"{format_size(disk)}; free some space or use --open-data-dir"
            )
    downloaded, unchanged = [], []
    for remote in remotes:
        if is_current(folder, remote):
            unchanged.append(remote.table)
            continue
        progress = reporter.table(remote.table, remote.length, part_bytes(folder, remote))
        download_table(session, folder, remote, timeout, clock, progress)
        downloaded.append(remote.table)
    reporter.done()
    notes = {r.table: r.etag or r.last_modified or str(r.length) for r in remotes}
    if previous is not None and previous.sources == notes:
        return SyncReport(previous, downloaded, unchanged)
    reporter.say("Making the columnar copy (Parquet) that queries read ...")
    copy = make_copy(folder, notes, dump_date(remotes))
    return SyncReport(copy, downloaded, unchanged, copied=True)
