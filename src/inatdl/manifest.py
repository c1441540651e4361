"""photos.csv, made from the state store: one row per downloaded photo and size."""

from __future__ import annotations

from pathlib import Path

from inatdl.files import atomic_write_text
from inatdl.state import DONE, Store

MANIFEST_COLUMNS = (
    "photo_id", "observation_id", "taxon_id", "taxon_name", "observed_taxon_id",
    "observed_taxon_name", "size", "path", "url", "license_code", "attribution", "observer",
    "quality_grade", "latitude", "longitude", "observed_on", "observation_url", "bytes",
)  # fmt: skip
_ID_COLUMNS = ("photo_id", "observation_id", "taxon_id", "observed_taxon_id", "bytes")


def write_manifest(store: Store, path: Path) -> int:
    """Rewrite photos.csv atomically from the log; returns the number of rows."""
    import pandas as pd  # only here: pandas takes a while to import

    store.flush()
    columns = ", ".join(MANIFEST_COLUMNS)
    with store.transaction():
        frame = pd.read_sql_query(
            f"SELECT {columns} FROM photos WHERE status=? "
            "ORDER BY taxon_name, observation_id, photo_id, size",
            store.db,
            params=(DONE,),
        )
    for column in _ID_COLUMNS:
        frame[column] = frame[column].astype("Int64")
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
    return len(frame)
