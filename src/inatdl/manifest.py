"""photos.csv, made from the state store: one row per downloaded photo and size."""

from __future__ import annotations

from pathlib import Path

from inatdl.files import atomic_writer
from inatdl.state import DONE, Store

MANIFEST_COLUMNS = (
    "photo_id", "observation_id", "taxon_id", "taxon_name", "observed_taxon_id",
    "observed_taxon_name", "size", "path", "url", "license_code", "attribution", "observer",
    "quality_grade", "latitude", "longitude", "observed_on", "observation_url", "bytes",
)  # fmt: skip
_ID_COLUMNS = ("photo_id", "observation_id", "taxon_id", "observed_taxon_id", "bytes")


def write_manifest(store: Store, path: Path, chunk_rows: int = 5000) -> None:
    """Rewrite photos.csv atomically from the log, a few thousand rows at a time, so memory
    stays flat however many photos the data dir holds."""
    import pandas as pd  # only here: pandas takes a while to import

    store.flush()
    columns = ", ".join(MANIFEST_COLUMNS)
    query = f"SELECT {columns} FROM photos WHERE status=? ORDER BY taxon_name, observation_id, photo_id, size"
    with store.transaction(), atomic_writer(path) as handle:
        chunks = pd.read_sql_query(query, store.db, params=(DONE,), chunksize=chunk_rows)
        header = True
        for frame in chunks:
            for column in _ID_COLUMNS:
                frame[column] = frame[column].astype("Int64")
            frame.to_csv(handle, index=False, header=header, lineterminator="\n")
            header = False
        if header:  # no photo yet: the header alone
            handle.write(",".join(MANIFEST_COLUMNS) + "\n")
