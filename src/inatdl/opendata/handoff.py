"""`photos plan OUT.parquet`: a job's photos, after filters, caps and splits, as the input
img2dataset reads as it is, so a cluster can download what one machine cannot.

Columns: ``url`` (at the size asked), ``label`` (the taxon's accepted name), the photos.csv
columns known before a download (all but ``path`` and ``bytes``), and ``split`` with
``--split``, drawn by the same hash as `dataset export` (an observation's group is its id,
or its uuid where the route knows no id), so the plan's splits are the export's.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inatdl.constants import STATE_FILE
from inatdl.errors import InatdlError
from inatdl.files import atomic_binary_writer, disk_error
from inatdl.splits import group_key, split_for, unit_hash

if TYPE_CHECKING:
    import pyarrow as pa

#: The columns of the plan, in order, with their Parquet types (split last, with --split).
PLAN_FILE_TYPES = (
    ("url", "string"), ("label", "string"), ("photo_id", "int64"), ("observation_id", "int64"),
    ("taxon_id", "int64"), ("taxon_name", "string"), ("observed_taxon_id", "int64"),
    ("observed_taxon_name", "string"), ("size", "string"), ("license_code", "string"),
    ("attribution", "string"), ("observer", "string"), ("quality_grade", "string"),
    ("latitude", "float64"), ("longitude", "float64"), ("observed_on", "string"),
    ("observation_url", "string"), ("observation_uuid", "string"),
    ("positional_accuracy", "int64"), ("coordinates_obscured", "bool_"),
)  # fmt: skip
SPLIT_COLUMN = "split"


@dataclass(frozen=True)
class PlanFileOptions:
    """What `photos plan` adds to the job: splits drawn as `dataset export` draws them."""

    splits: tuple[tuple[str, float], ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class PlanFileReport:
    path: Path
    photos: int
    taxa: int
    per_split: dict[str, int]

    @property
    def extra_columns(self) -> list[str]:
        """The columns img2dataset is told to keep (--save_additional_columns)."""
        names = [name for name, _ in PLAN_FILE_TYPES if name not in ("url", "label")]
        return names + ([SPLIT_COLUMN] if self.per_split else [])


def schema(with_split: bool) -> pa.Schema:
    import pyarrow as pa

    fields = [pa.field(name, getattr(pa, kind)()) for name, kind in PLAN_FILE_TYPES]
    if with_split:
        fields.append(pa.field(SPLIT_COLUMN, pa.string()))
    return pa.schema(fields)


def split_of(observation_id: int | None, observation_uuid: str | None, options: PlanFileOptions) -> str:
    """The split `dataset export --group-by observation --seed N` puts this photo in."""
    key = str(observation_id) if observation_id is not None else str(observation_uuid or "")
    return split_for(unit_hash(options.seed, group_key("observation", key, "")), options.splits)


def write_plan_file(path: Path, tables: Iterable[pa.Table], options: PlanFileOptions) -> PlanFileReport:
    """Write ``tables`` (the plan's columns, split aside) to ``path`` atomically, streamed,
    with the split column drawn when asked."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    base, target = schema(False), schema(bool(options.splits))
    photos, taxa, per_split = 0, set(), Counter[str]()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise disk_error(exc, path, "choose another OUT.parquet") from exc
    with (
        atomic_binary_writer(path, "choose another OUT.parquet") as handle,
        pq.ParquetWriter(handle, target, compression="zstd") as writer,
    ):
        for table in tables:
            table = table.select(base.names).cast(base)
            if options.splits:
                splits = _splits(table, options)
                per_split.update(splits)
                table = table.append_column(SPLIT_COLUMN, pa.array(splits, pa.string()))
            taxa.update(pc.unique(table.column("taxon_id")).to_pylist())
            photos += table.num_rows
            writer.write_table(table)
    counts = {name: per_split[name] for name, _ in options.splits}
    return PlanFileReport(path, photos, len(taxa), counts)


def _splits(table: pa.Table, options: PlanFileOptions) -> list[str]:
    """Each row's split, by its observation's id, or its uuid where the route has no id."""
    ids = table.column("observation_id").to_pylist()
    uuids = table.column("observation_uuid").to_pylist()
    return [split_of(i, u, options) for i, u in zip(ids, uuids, strict=True)]


def tables_from_rows(batches: Iterable[Sequence[dict[str, Any]]]) -> Iterator[pa.Table]:
    """Rows keyed by photos.csv's names (the API route's, from the state) as plan tables."""
    import pyarrow as pa

    base = schema(False)
    for batch in batches:
        yield pa.Table.from_pylist([_plan_row(row) for row in batch], schema=base)


def _plan_row(row: dict[str, Any]) -> dict[str, Any]:
    planned = {name: row.get(name) for name, _ in PLAN_FILE_TYPES}
    planned["label"] = row["taxon_name"]
    obscured = planned["coordinates_obscured"]
    if obscured is not None:  # the state keeps it as 0 or 1
        planned["coordinates_obscured"] = bool(obscured)
    return planned


# The API route: the listing a dry run kept in the state, for the job's taxa, size and filters.
STATE_PLAN_SQL = """
SELECT {columns} FROM photos
WHERE taxon_id = ? AND size = ? AND query = ? AND status != 'gone'
ORDER BY observation_id, photo_id
LIMIT ?
"""


def listed_in_state(
    data_dir: Path, keys: Sequence[tuple[int, str]], size: str, cap: int | None, batch_rows: int = 2000
) -> Iterator[list[dict[str, Any]]]:
    """The rows the state holds for each (taxon id, listing key), up to ``cap`` a taxon, in
    the order the cap keeps them (lowest observation ids first)."""
    try:  # mode=rw, never creating it: as the last to close, it removes the -wal and -shm files
        db = sqlite3.connect(f"{(data_dir / STATE_FILE).resolve().as_uri()}?mode=rw", uri=True)
        db.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise InatdlError(f"cannot read the state of {data_dir}: {exc}") from exc
    try:
        present = {r[1] for r in db.execute("PRAGMA table_info(photos)")}
        wanted = [name for name, _ in PLAN_FILE_TYPES if name in present]
        sql = STATE_PLAN_SQL.format(columns=", ".join(wanted))
        for taxon_id, key in keys:
            rows = db.execute(sql, (taxon_id, size, key, -1 if cap is None else cap))
            while chunk := rows.fetchmany(batch_rows):
                yield [dict(zip(wanted, values, strict=True)) for values in chunk]
    finally:
        db.close()
