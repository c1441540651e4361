"""photos.csv, made from the state store: one row per downloaded photo and size."""

from __future__ import annotations

import csv
from pathlib import Path

from inatdl.files import atomic_writer
from inatdl.state import DONE, Store

MANIFEST_COLUMNS = (
    "photo_id", "observation_id", "taxon_id", "taxon_name", "observed_taxon_id",
    "observed_taxon_name", "size", "path", "url", "license_code", "attribution", "observer",
    "quality_grade", "latitude", "longitude", "observed_on", "observation_url", "bytes",
)  # fmt: skip


def write_manifest(store: Store, path: Path, batch_rows: int = 5000) -> None:
    """Rewrite photos.csv atomically from the log, streamed a few thousand rows at a time.

    Written with the csv module rather than pandas: importing pandas alone costs about
    45 MB and 0.4 s a run, which would double the memory of a fetch for one CSV file.
    """
    store.flush()
    columns = ", ".join(MANIFEST_COLUMNS)
    query = f"SELECT {columns} FROM photos WHERE status=? ORDER BY taxon_name, observation_id, photo_id, size"
    with store.transaction(), atomic_writer(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        rows = store.db.execute(query, (DONE,))
        while batch := rows.fetchmany(batch_rows):
            writer.writerows(batch)
