"""photos.csv, made from the state store: one row per downloaded photo and size."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from inatdl.files import atomic_writer
from inatdl.migrations import SCHEMA_VERSION
from inatdl.photo import MANIFEST_COLUMNS
from inatdl.state import DONE, PHOTOS_CSV_KEY, Store

#: How photos.csv spells a column whose state value is not what it shows: the state keeps
#: a yes/no as 1/0 and an unknown as NULL (an empty cell).
_SHOWN_AS = {
    "coordinates_obscured": "CASE coordinates_obscured WHEN 1 THEN 'true' WHEN 0 THEN 'false' END",
}


def write_manifest(store: Store, path: Path, batch_rows: int = 2000) -> None:
    """Rewrite photos.csv atomically from the log, streamed a few thousand rows at a time,
    unless it is the file last written and the photos it lists have not changed since:
    the state deletes the record of that file with any change to a photo, and the record
    holds a fingerprint of the photos (for a writer that does not, as an older inatdl).

    A rerun of a finished job of a million photos would otherwise spend seconds writing the
    same file again. Written with the csv module rather than pandas: importing pandas alone
    costs about 45 MB and 0.4 s a run, which would double the memory of a fetch for one CSV
    file.
    """
    store.flush()
    with store.transaction():
        listed = _fingerprint(store)
        if _written(store, path) == {**_identity(path), "listed": listed}:
            return
    columns = ", ".join(_SHOWN_AS.get(column, column) for column in MANIFEST_COLUMNS)
    query = f"SELECT {columns} FROM photos WHERE status=? ORDER BY taxon_name, observation_id, photo_id, size"
    with store.transaction(), atomic_writer(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        rows = store.db.execute(query, (DONE,))
        while batch := rows.fetchmany(batch_rows):
            writer.writerows(batch)
    # After the rename: a crash in between leaves the old record, so the next run rewrites.
    written = json.dumps({**_identity(path), "listed": listed})
    with store.transaction():
        store.db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (PHOTOS_CSV_KEY, written),
        )


def _fingerprint(store: Store) -> list[object]:
    """What photos.csv would hold, in one pass over the log: the downloaded photos' count,
    ids and times of change (every change to a photo's row sets its updated_at or its
    status), with the columns and state version that shape the file."""
    row = store.db.execute(
        "SELECT COUNT(*), TOTAL(photo_id), TOTAL(updated_at), MAX(updated_at) FROM photos WHERE status=?",
        (DONE,),
    ).fetchone()
    return [*row, SCHEMA_VERSION, list(MANIFEST_COLUMNS)]


def _identity(path: Path) -> dict[str, object]:
    """Which file is at ``path``: a file edited, replaced or deleted since is another."""
    try:
        stat = os.stat(path)
    except OSError:
        return {"path": os.path.abspath(path), "missing": True}
    return {
        "path": os.path.abspath(path),
        "bytes": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "inode": stat.st_ino,
    }


def _written(store: Store, path: Path) -> object:
    """The record of the photos.csv last written (None when there is none)."""
    row = store.db.execute("SELECT value FROM meta WHERE key=?", (PHOTOS_CSV_KEY,)).fetchone()
    return json.loads(row[0]) if row else None


def obscured_note(obscured: dict[str, int] | None) -> list[str]:
    """The dataset card's paragraph on obscured coordinates, from how many photos have each
    value of photos.csv's ``coordinates_obscured`` (None: a photos.csv from before that
    column): a modeller would otherwise take blurred coordinates for points."""
    if obscured is None:
        return ["", "Whether coordinates are obscured is not known: photos.csv predates that column."]
    hidden, unknown, photos = obscured.get("true", 0), obscured.get("", 0), sum(obscured.values())
    lines = [
        "",
        f"{hidden:,} of {photos:,} photos have obscured coordinates (`coordinates_obscured`): "
        "iNaturalist blurs them, up to about 30 km, for the observer's geoprivacy or a threatened "
        "taxon; `positional_accuracy` says how far off they may be, in metres.",
    ]
    if unknown:
        lines[-1] += f" For {unknown:,} it is not known (listed by an earlier inatdl)."
    return lines
