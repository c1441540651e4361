"""The state store: the photo log, paging cursors and byte ledger, in SQLite (WAL).

Resume trusts this file, so every change is a transaction, and the per-photo results
of the workers are batched into a commit every few hundred photos or seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

from inatdl.clock import Clock
from inatdl.constants import COMMIT_EVERY_PHOTOS, COMMIT_EVERY_SECONDS, LOCK_FILE
from inatdl.errors import DataDirBusy, DiskError, InatdlError, StateError
from inatdl.files import disk_error
from inatdl.lease_slot import LeaseSlot
from inatdl.migrations import APP_ID, SCHEMA_VERSION, upgrade_statements
from inatdl.photo import STATE_COLUMNS, PhotoRecord

log = logging.getLogger("inatdl")

PENDING, DONE, FAILED, GONE = "pending", "done", "failed", "gone"
#: The meta key of the record of the photos.csv written last (manifest.py): any change to
#: the photos deletes it, in the same transaction.
PHOTOS_CSV_KEY = "photos_csv"


#: A record's values in STATE_COLUMNS order, for an INSERT.
_state_values = attrgetter(*STATE_COLUMNS)


class Skip(NamedTuple):
    """A photo listed for a taxon and not kept (its licence, a placeholder...): kept in the
    state so that every run reports it, not only the run that paged it."""

    photo_id: int
    size: str
    query: str  # the walk that listed it (Filters.key)
    taxon_id: int
    reason: str


class Cursor(NamedTuple):
    """Where one taxon's walk under one filter and size stands."""

    query: str  # the filters and size (Filters.key), naming the walk
    taxon_id: int
    last_id: int  # every photo of observations up to this id is recorded


@dataclass
class PhotoJob:
    """One photo at one size to download, as the workers need it."""

    photo_id: int
    size: str
    url: str
    path: str
    taxon_id: int
    # False for a photo the state did not hold before this run, whose file the sweep did
    # not find (sweep.OnDisk): its download need not look for it first.
    may_be_on_disk: bool = True


@dataclass
class Outcome:
    """What happened to one photo job; kept as data, counted in the summary."""

    job: PhotoJob
    status: str
    bytes: int = 0
    error: str = ""
    attempts: int = 0
    already_there: bool = False


class DataDirLock:
    """An exclusive lock on the data dir, so two runs never download a photo twice; another
    ``name`` locks one job of the data dir only (`records fetch` runs beside `photos fetch`),
    or another folder (`opendata sync` locks the open-data dir; ``advice``: what to do)."""

    def __init__(
        self, data_dir: Path, name: str = LOCK_FILE, advice: str = "or use another --data-dir"
    ) -> None:
        self.path = data_dir / name
        self.advice = advice
        self._handle: Any = None

    def __enter__(self) -> DataDirLock:
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until exit
        try:
            _lock_file(handle)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DataDirBusy(
                f"another inatdl (pid {holder}) is using {self.path.parent}; wait for it to "
                f"finish, {self.advice}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def lock_holder(data_dir: Path, name: str = LOCK_FILE) -> str | None:
    """The pid of the run holding the data dir's lock now ("unknown" if it wrote none), or
    None; looked at without writing anything (no lock file: no run has one)."""
    try:
        handle = open(data_dir / name, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError:
        return None
    with handle:
        try:
            _lock_file(handle)
        except OSError:
            return handle.read().strip() or "unknown"
    return None


def _lock_file(handle: Any) -> None:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


class Store:
    """The state file of one data dir, safe to call from many threads."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.RLock()
        self._pending: list[Outcome] = []  # outcomes not committed yet
        self._pending_lock = threading.Lock()  # for _pending alone, never held while waiting
        self._last_commit = clock.monotonic()
        self._lease_slot = LeaseSlot(path.with_name(path.name + "-lease"))
        _check_is_sqlite(path)
        try:
            self.db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise _state_write_error(path, exc) from None
        try:
            version = self._check_owner()
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._create_or_upgrade(version)
        except InatdlError:  # refused, or cannot be written (a full disk during an upgrade)
            self.db.close()
            raise
        except sqlite3.DatabaseError as exc:
            self.db.close()
            if not isinstance(exc, sqlite3.OperationalError) or "malformed" in str(exc):
                raise StateError(
                    f"the state file {path} is damaged ({exc}); move it away to start afresh "
                    "(photos already on disk are kept and found again)"
                ) from None
            raise _state_write_error(path, exc) from None

    def _check_owner(self) -> int | None:
        """The file's state version (None: a new file), refusing, before changing a byte of
        it, a database that is not ours or is newer than this code."""
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        if "meta" not in tables:
            raise StateError(
                f"{self.path} is an SQLite file of another program, not inatdl state; "
                "move it away or use another --data-dir"
            )
        meta = dict(self.db.execute("SELECT key, value FROM meta"))
        if meta.get("app") != APP_ID:
            raise StateError(f"{self.path} is not inatdl state; move it away or use another --data-dir")
        written = meta.get("schema_version", "")
        if not written.isdigit():
            raise StateError(
                f"the state file {self.path} has no state version it can be read by ({written!r}); "
                "move it away to start afresh (photos already on disk are kept and found again)"
            )
        version = int(written)
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.path} was written by a newer inatdl (state version {version}); "
                "upgrade inatdl to use this data dir"
            )
        return version

    def _create_or_upgrade(self, version: int | None) -> None:
        """Make a new state file, or bring an older one up to SCHEMA_VERSION, in place.

        A new file starts as the first release's tables and takes the same steps as an old
        one, so both end the same. All steps and the new version are one transaction: a
        crash or a full disk leaves the file as it was, for the next run to upgrade.
        """
        if version == SCHEMA_VERSION:
            return
        if version is not None:  # a large state takes a while (about 20 s a million photos)
            log.warning("upgrading the state file %s to version %d, once", self.path, SCHEMA_VERSION)
        with self.transaction():
            for statement in upgrade_statements(version):
                self.db.execute(statement)

    def transaction(self) -> _Transaction:
        return _Transaction(self)

    def close(self) -> None:
        with self._lock:
            self.flush()
            self.db.close()

    # Paging cursors -------------------------------------------------------------------

    def cursor(self, query: str) -> int:
        """The last observation id whose photos are all recorded, for this query."""
        with self._lock:
            row = self.db.execute("SELECT last_id FROM cursors WHERE query=?", (query,)).fetchone()
        return int(row[0]) if row else 0

    def highest_cursor(self) -> int:
        """The highest observation id any walk got to: an id that existed before this run."""
        with self._lock:
            row = self.db.execute("SELECT MAX(last_id) FROM cursors").fetchone()
        return int(row[0] or 0)

    def record_page(
        self, cursors: Sequence[Cursor], rows: Sequence[PhotoRecord], skips: Sequence[Skip] = ()
    ) -> None:
        """Insert a page's new photos as pending, its skipped ones, and move the cursors, in
        one transaction."""
        now = self.clock.now()
        columns = ", ".join(STATE_COLUMNS)
        marks = ", ".join("?" for _ in STATE_COLUMNS)
        sql = f"INSERT OR IGNORE INTO photos ({columns}, status, updated_at) VALUES ({marks}, '{PENDING}', ?)"
        with self.transaction():
            self.db.executemany(sql, [(*_state_values(row), now) for row in rows])
            if skips:
                self.db.executemany("INSERT OR IGNORE INTO skipped VALUES (?, ?, ?, ?, ?)", skips)
            self.db.executemany(
                "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT(query) DO UPDATE SET "
                "last_id=excluded.last_id, updated_at=excluded.updated_at",
                [(c.query, c.taxon_id, c.last_id, now) for c in cursors],
            )

    def forget_other_listings(self, taxon_id: int, size: str, query: str) -> None:
        """Drop what other filters listed but did not download, and forget those walks.

        A run downloads only what its own filters (licences, quality, place...) allow; the
        dropped walks start again from the beginning if their filters are used again.
        """
        with self.transaction():
            others = [
                r[0]
                for r in self.db.execute(
                    "SELECT DISTINCT query FROM photos WHERE taxon_id=? AND size=? AND status IN (?, ?) "
                    "AND query != ?",
                    (taxon_id, size, PENDING, FAILED, query),
                )
            ]
            for other in others:
                self.db.execute(
                    "DELETE FROM photos WHERE query=? AND status IN (?, ?)", (other, PENDING, FAILED)
                )
                self.db.execute("DELETE FROM cursors WHERE query=?", (other,))
                self.db.execute("DELETE FROM skipped WHERE query=?", (other,))

    # Photos ---------------------------------------------------------------------------

    def status_counts(self, taxon_id: int, size: str) -> dict[str, int]:
        with self._lock:
            rows = self.db.execute(
                "SELECT status, COUNT(*) FROM photos WHERE taxon_id=? AND size=? GROUP BY status",
                (taxon_id, size),
            ).fetchall()
        return {status: count for status, count in rows}

    def skip_counts(self, query: str) -> dict[str, int]:
        """The photos a walk listed and did not keep, by reason."""
        with self._lock:
            rows = self.db.execute(
                "SELECT reason, COUNT(*) FROM skipped WHERE query=? GROUP BY reason", (query,)
            ).fetchall()
        return {reason: count for reason, count in rows}

    def jobs_to_retry(self, taxon_id: int, size: str, batch: int = 1000) -> Iterator[PhotoJob]:
        """Pending and failed photos of a taxon, streamed: those without an observation id
        (the open-data route's) first, by photo id, then by lowest observation id.

        Two walks, each along the index, since a NULL id never compares greater than a key.
        """
        without_id = ("observation_id IS NULL AND photo_id", "photo_id")
        by_id = ("(observation_id, photo_id)", "observation_id, photo_id")
        for key, order in (without_id, by_id):
            yield from self._retries(taxon_id, size, batch, key, order)

    def _retries(self, taxon_id: int, size: str, batch: int, key: str, order: str) -> Iterator[PhotoJob]:
        """One keyset walk of the photos to retry: ``key`` greater than the last row's ``order``."""
        after: tuple[Any, ...] = (-1,) * len(order.split(","))
        while True:
            marks = ", ".join("?" * len(after))
            with self._lock:
                rows = self.db.execute(
                    f"SELECT photo_id, url, path, {order} FROM photos "
                    f"WHERE taxon_id=? AND size=? AND status IN (?, ?) AND {key} > ({marks}) "
                    f"ORDER BY {order} LIMIT ?",
                    (taxon_id, size, PENDING, FAILED, *after, batch),
                ).fetchall()
            for photo_id, url, path, *_ in rows:
                yield PhotoJob(photo_id, size, url, path, taxon_id)
            if len(rows) < batch:
                return
            after = tuple(rows[-1][3:])

    def observations_recorded(self, taxon_ids: Sequence[int], size: str, above: int, up_to: int) -> int:
        """How many observations of these taxa, with ids above ``above`` and up to ``up_to``,
        have photos in the log at this size: what a walk from ``above`` would page again."""
        count = 0
        with self._lock:
            for chunk, marks in _in_chunks(taxon_ids):
                row = self.db.execute(
                    "SELECT COUNT(DISTINCT observation_id) FROM photos "
                    f"WHERE size=? AND taxon_id IN ({marks}) AND observation_id > ? AND observation_id <= ?",
                    (size, *chunk, above, up_to),
                ).fetchone()
                count += int(row[0])
        return count

    def recorded(self, photo_ids: Sequence[int], size: str) -> dict[int, tuple[str, int, str]]:
        """Which of these photos are already in the log at this size: status, taxon, path."""
        found: dict[int, tuple[str, int, str]] = {}
        with self._lock:
            for chunk, marks in _in_chunks(photo_ids):
                rows = self.db.execute(
                    "SELECT photo_id, status, taxon_id, path FROM photos "
                    f"WHERE size=? AND photo_id IN ({marks})",
                    (size, *chunk),
                )
                found.update((photo_id, (status, taxon, path)) for photo_id, status, taxon, path in rows)
        return found

    def move_photo(self, row: PhotoRecord) -> None:
        """A downloaded photo now belongs to another taxon (one listed since, more specific)."""
        with self.transaction():
            self.db.execute(
                "UPDATE photos SET taxon_id=?, taxon_name=?, path=?, query=?, updated_at=? "
                "WHERE photo_id=? AND size=?",
                (row.taxon_id, row.taxon_name, row.path, row.query, self.clock.now(), row.photo_id, row.size),
            )
            self._photos_csv_outdated()

    def recent_sizes(self, size: str, limit: int) -> list[int]:
        """Byte sizes of up to ``limit`` of the latest photos downloaded at ``size``."""
        with self._lock:
            rows = self.db.execute(
                "SELECT bytes FROM photos WHERE size=? AND status=? AND bytes > 0 "
                "ORDER BY updated_at DESC LIMIT ?",
                (size, DONE, limit),
            ).fetchall()
        return [row[0] for row in rows]

    def done_paths(self) -> Iterator[tuple[int, str, str]]:
        """(photo_id, size, path) of every photo recorded as downloaded."""
        with self._lock:
            rows = self.db.execute(
                "SELECT photo_id, size, path FROM photos WHERE status=?", (DONE,)
            ).fetchall()
        yield from rows

    def done_path_set(self) -> set[str]:
        """The paths of every photo recorded as downloaded, to compare as sets (in C) with
        the files on disk at the start of a run."""
        with self._lock:
            return {path for (path,) in self.db.execute("SELECT path FROM photos WHERE status=?", (DONE,))}

    def mark_missing(self, keys: Sequence[tuple[int, str]]) -> None:
        """Photos whose files were deleted: download them again."""
        with self.transaction():
            self.db.executemany(
                "UPDATE photos SET status=?, bytes=NULL WHERE photo_id=? AND size=?",
                [(PENDING, pid, size) for pid, size in keys],
            )
            self._photos_csv_outdated()

    def _photos_csv_outdated(self) -> None:
        """Forget, in the transaction that changes a photo, the record of the photos.csv
        written last (manifest.py), which lets a rerun leave that file as it is."""
        self.db.execute("DELETE FROM meta WHERE key=?", (PHOTOS_CSV_KEY,))

    def record(self, outcome: Outcome) -> None:
        """Queue a photo's outcome; committed in batches (a crash loses at most a batch,
        which the next run finds again: files under their final name are complete).

        A worker never waits for the database: when a batch is due while another thread
        holds it (a commit, a page of the listing), the batch is left to the next outcome.
        """
        with self._pending_lock:
            self._pending.append(outcome)
            due = len(self._pending) >= COMMIT_EVERY_PHOTOS
            due = due or self.clock.monotonic() - self._last_commit >= COMMIT_EVERY_SECONDS
        if due and self._lock.acquire(blocking=False):
            try:
                self.flush()
            finally:
                self._lock.release()

    def flush(self) -> None:
        """Commit the outcomes recorded so far."""
        with self._lock:
            with self._pending_lock:
                batch, self._pending = self._pending, []
            if not batch:
                self._last_commit = self.clock.monotonic()
                return
            now = self.clock.now()
            rows = [
                (o.status, o.bytes or None, o.error or None, o.attempts, now, o.job.photo_id, o.job.size)
                for o in batch
            ]
            try:
                with self.transaction():
                    self.db.executemany(
                        "UPDATE photos SET status=?, bytes=?, error=?, attempts=attempts+?, "
                        "updated_at=? WHERE photo_id=? AND size=?",
                        rows,
                    )
                    self._photos_csv_outdated()
            except BaseException:
                with self._pending_lock:  # not written: still to commit
                    self._pending[:0] = batch
                raise
            self._last_commit = self.clock.monotonic()

    # Byte ledger ----------------------------------------------------------------------

    def ledger_since(self, since: float) -> list[tuple[float, int]]:
        with self._lock:
            return [
                (at, n)
                for at, n in self.db.execute(
                    "SELECT at, bytes FROM ledger WHERE at > ? ORDER BY at", (since,)
                )
            ]

    def open_lease(self, at: float, num_bytes: int) -> int:
        """Write a reservation before its bytes are read, so a crash overcounts, never under."""
        try:
            self._lease_slot.allocate()  # where its closing goes if the disk fills meanwhile
        except OSError as exc:
            raise disk_error(exc, self._lease_slot.path) from None
        with self.transaction():
            cursor = self.db.execute("INSERT INTO ledger (at, bytes) VALUES (?, ?)", (at, num_bytes))
        return int(cursor.lastrowid or 0)

    def close_lease(self, lease_id: int, at: float, num_bytes: int) -> None:
        """Replace a lease's reservation by the bytes really sent; on a full disk, keep that
        in the lease slot for the next run (settle_kept_lease), not the reservation."""
        try:
            with self.transaction():
                if num_bytes:
                    self.db.execute("UPDATE ledger SET at=?, bytes=? WHERE id=?", (at, num_bytes, lease_id))
                else:
                    self.db.execute("DELETE FROM ledger WHERE id=?", (lease_id,))
                self.db.execute("DELETE FROM ledger WHERE at < ?", (at - 2 * 86400,))
        except DiskError:
            with contextlib.suppress(OSError):  # the slot is written in place: no space needed
                self._lease_slot.keep(lease_id, at, num_bytes)
            raise

    def settle_kept_lease(self) -> None:
        """Write to the ledger the closing of a lease that a run could not write (a full disk)."""
        kept = self._lease_slot.kept()
        if kept is not None:
            self.close_lease(*kept)
            self._lease_slot.clear()

    def shrink_lease(self, lease_id: int, num_bytes: int) -> None:
        """Take back bytes a closed lease counted for a download that sent fewer."""
        with self.transaction():
            self.db.execute("UPDATE ledger SET bytes = bytes - ? WHERE id=?", (num_bytes, lease_id))
            self.db.execute("DELETE FROM ledger WHERE id=? AND bytes <= 0", (lease_id,))


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT under the store's lock; ROLLBACK on any error."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store._lock.acquire()
        try:
            self.store.db.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            self.store._lock.release()
            if isinstance(exc, sqlite3.Error):
                raise _state_write_error(self.store.path, exc) from None
            raise

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.store.db.execute("ROLLBACK" if exc_type else "COMMIT")
        except sqlite3.Error as error:
            raise _state_write_error(self.store.path, error) from None
        finally:
            self.store._lock.release()
        if isinstance(exc, sqlite3.OperationalError):
            raise _state_write_error(self.store.path, exc) from None


def _state_write_error(path: Path, error: sqlite3.Error) -> InatdlError:
    """One line for a state file that cannot be written (full disk, read-only, I/O error)."""
    text = str(error)
    if "full" in text:
        return DiskError(
            f"the disk holding {path} is full; free some space and run the same command again "
            "(nothing done so far is lost)"
        )
    return StateError(
        f"cannot use the state file {path}: {text}; check its permissions and those of its folder"
    )


def _check_is_sqlite(path: Path) -> None:
    """Refuse, before SQLite touches it, a state file that is not SQLite at all."""
    if path.is_dir():
        raise StateError(f"{path} is a folder, not the state file; move it away")
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"cannot read the state file {path}: {exc.strerror}") from None
    if header and header != b"SQLite format 3\x00":
        raise StateError(
            f"{path} is not an inatdl state file (not SQLite); move it away or use another "
            "--data-dir (nothing was changed)"
        )


#: Ids bound in one ``IN (...)`` list: well under SQLite's limit on bound variables.
_IDS_PER_QUERY = 500


def _in_chunks(ids: Sequence[int]) -> Iterator[tuple[list[int], str]]:
    """``ids`` in slices small enough for one query, each with its ``?,?,…`` placeholders."""
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = list(ids[start : start + _IDS_PER_QUERY])
        yield chunk, ",".join("?" * len(chunk))
