"""photos.csv, made from the state store: one row per downloaded photo and size."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from inatdl.files import atomic_writer
from inatdl.photo import MANIFEST_COLUMNS
from inatdl.state import DONE, Store

#: How photos.csv spells a column whose state value is not what it shows: the state keeps
#: a yes/no as 1/0 and an unknown as NULL (an empty cell).
_SHOWN_AS = {
    "coordinates_obscured": "CASE coordinates_obscured WHEN 1 THEN 'true' WHEN 0 THEN 'false' END",
}


def write_manifest(store: Store, path: Path, batch_rows: int = 5000) -> None:
    """Rewrite photos.csv atomically from the log, streamed a few thousand rows at a time.

    Written with the csv module rather than pandas: importing pandas alone costs about
    45 MB and 0.4 s a run, which would double the memory of a fetch for one CSV file.
    """
    store.flush()
    columns = ", ".join(_SHOWN_AS.get(column, column) for column in MANIFEST_COLUMNS)
    query = f"SELECT {columns} FROM photos WHERE status=? ORDER BY taxon_name, observation_id, photo_id, size"
    with store.transaction(), atomic_writer(path) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        rows = store.db.execute(query, (DONE,))
        while batch := rows.fetchmany(batch_rows):
            writer.writerows(batch)


def obscured_note(obscured: Iterable[str] | None) -> list[str]:
    """The dataset card's paragraph on obscured coordinates, from photos.csv's
    ``coordinates_obscured`` cells (None: a photos.csv from before that column): a modeller
    would otherwise take blurred coordinates for points."""
    if obscured is None:
        return ["", "Whether coordinates are obscured is not known: photos.csv predates that column."]
    cells = list(obscured)
    hidden, unknown = cells.count("true"), cells.count("")
    lines = [
        "",
        f"{hidden:,} of {len(cells):,} photos have obscured coordinates (`coordinates_obscured`): "
        "iNaturalist blurs them, up to about 30 km, for the observer's geoprivacy or a threatened "
        "taxon; `positional_accuracy` says how far off they may be, in metres.",
    ]
    if unknown:
        lines[-1] += f" For {unknown:,} it is not known (listed by an earlier inatdl)."
    return lines
