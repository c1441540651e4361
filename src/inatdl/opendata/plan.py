"""The open-data plan: a job's photos as one DuckDB query over the columnar copy.

The engine does all the table work: each taxon of the dump routed to the most specific
listed taxon of its lineage (``ancestry`` then itself), the filters (licence, quality, box,
dates), a photo under several observations kept once, each listed taxon's photos in photo
id order after its cursor and up to its room under ``--max-per-taxon``, and every
photos.csv column (URL at the size asked, attribution as iNaturalist writes it). Python only
reads the result in batches.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inatdl.constants import IMAGE_EXTENSIONS, QUALITY_GRADES
from inatdl.files import disk_error
from inatdl.observations import Filters
from inatdl.opendata.columnar import Copy
from inatdl.opendata.engine import connect, sql_literal, temp_folder

if TYPE_CHECKING:
    import pyarrow as pa

PLAN_BATCH_ROWS = 2000  # rows handed on at once (one state transaction each in a fetch)
PLAN_FILE_BATCH_ROWS = 10_000  # rows a row group of the plan file, written at once (Arrow, no Python
# rows; 100,000 cost ~130 MB more at the peak on 10 M photo rows, for no gain in time)
OBSERVATION_URL = "https://www.inaturalist.org/observations/"

#: The plan's columns, photos.csv's names (``extension`` and ``after`` aside).
PLAN_COLUMNS = (
    "photo_id", "observation_uuid", "taxon_id", "taxon_name", "observed_taxon_id",
    "observed_taxon_name", "path", "url", "license_code", "attribution", "observer",
    "quality_grade", "latitude", "longitude", "observed_on", "observation_url",
    "positional_accuracy", "extension",
)  # fmt: skip

# $listed_* are parallel lists, one item per listed taxon: its id, accepted name, folder,
# cursor (photo ids up to it are recorded) and room (photos it may still take; NULL: no cap).
PLAN_SQL = r"""
WITH listed AS (
    SELECT unnest($listed_ids) AS listed_id, unnest($listed_names) AS taxon_name,
           unnest($listed_folders) AS folder, unnest($listed_after) AS after,
           unnest($listed_room) AS room
), lineages AS (
    SELECT taxon_id, name,
           list_concat(coalesce(TRY_CAST(string_split(nullif(ancestry, ''), '/') AS BIGINT[]),
                                []::BIGINT[]), [taxon_id]) AS ids
    FROM read_parquet($taxa)
), steps AS (
    SELECT taxon_id, unnest(ids) AS step, generate_subscripts(ids, 1) AS depth FROM lineages
), routes AS (
    SELECT s.taxon_id, arg_max(s.step, s.depth) AS listed_id
    FROM steps s SEMI JOIN listed l ON s.step = l.listed_id
    GROUP BY s.taxon_id
), named_routes AS (
    SELECT r.taxon_id, r.listed_id, g.name AS observed_taxon_name
    FROM routes r JOIN lineages g USING (taxon_id)
), kept_observations AS (
    SELECT o.observation_uuid, o.observer_id, o.latitude, o.longitude, o.positional_accuracy,
           o.taxon_id AS observed_taxon_id, r.observed_taxon_name, o.quality_grade, o.observed_on,
           r.listed_id
    FROM read_parquet($observations) o JOIN named_routes r USING (taxon_id)
    WHERE ($quality IS NULL OR list_contains($quality, o.quality_grade))
      AND ($swlat IS NULL OR (o.latitude BETWEEN $swlat AND $nelat AND CASE
            WHEN $swlng <= $nelng THEN o.longitude BETWEEN $swlng AND $nelng
            ELSE o.longitude >= $swlng OR o.longitude <= $nelng END))
      AND ($observed_from IS NULL OR o.observed_on >= CAST($observed_from AS DATE))
      AND ($observed_to IS NULL OR o.observed_on <= CAST($observed_to AS DATE))
), candidates AS (
    SELECT p.photo_id, p.extension, lower(p.license) AS license_code, o.*
    FROM read_parquet($photos) p JOIN kept_observations o USING (observation_uuid)
    WHERE list_contains($licenses, lower(p.license))
      AND list_contains($extensions, lower(p.extension))
    QUALIFY row_number() OVER (PARTITION BY p.photo_id ORDER BY o.observation_uuid) = 1
), ranked AS (
    SELECT c.*, l.taxon_name, l.folder, l.room,
           row_number() OVER (PARTITION BY c.listed_id ORDER BY c.photo_id) AS nth
    FROM candidates c JOIN listed l USING (listed_id)
    WHERE c.photo_id > l.after
)
SELECT r.photo_id,
       r.observation_uuid,
       r.listed_id AS taxon_id,
       r.taxon_name,
       r.observed_taxon_id,
       r.observed_taxon_name,
       r.folder || '/' || r.photo_id || '_' || $size || '.' || lower(r.extension) AS path,
       $base_url || '/photos/' || r.photo_id || '/' || $size || '.' || r.extension AS url,
       r.license_code,
       CASE r.license_code
           WHEN 'cc0' THEN '(c) ' || r.holder || ', no rights reserved (CC0)'
           WHEN 'pd' THEN r.holder || ', no known copyright restrictions (public domain)'
           ELSE '(c) ' || r.holder || ', some rights reserved (' ||
                replace(upper(r.license_code), 'CC-', 'CC ') || ')'
       END AS attribution,
       r.login AS observer,
       r.quality_grade,
       r.latitude,
       r.longitude,
       strftime(r.observed_on, '%Y-%m-%d') AS observed_on,
       $observation_url || r.observation_uuid AS observation_url,
       CAST(r.positional_accuracy AS BIGINT) AS positional_accuracy,
       lower(r.extension) AS extension
FROM (
    SELECT k.*, u.login, coalesce(nullif(u.name, ''), u.login, 'unknown') AS holder
    FROM ranked k LEFT JOIN read_parquet($observers) u ON u.observer_id = k.observer_id
    WHERE k.room IS NULL OR k.nth <= k.room
) r
ORDER BY r.listed_id, r.photo_id
"""


@dataclass(frozen=True)
class PlannedTaxon:
    """A listed taxon as the plan needs it: where its photos go and where it stands."""

    taxon_id: int
    name: str
    folder: str  # photos/<folder>, relative to the data dir
    after: int = 0  # its cursor: photo ids up to it are recorded
    room: int | None = None  # photos it may still take under --max-per-taxon


def plan_parameters(
    copy: Copy, taxa: Sequence[PlannedTaxon], size: str, filters: Filters, base_url: str
) -> dict[str, Any]:
    """PLAN_SQL's parameters for a job."""
    every_grade = set(filters.quality) >= set(QUALITY_GRADES)
    swlat, swlng, nelat, nelng = filters.bbox or (None, None, None, None)
    return {
        "listed_ids": [t.taxon_id for t in taxa],
        "listed_names": [t.name for t in taxa],
        "listed_folders": [t.folder for t in taxa],
        "listed_after": [t.after for t in taxa],
        "listed_room": [t.room for t in taxa],
        "taxa": str(copy.parquet("taxa")),
        "observations": str(copy.parquet("observations")),
        "photos": str(copy.parquet("photos")),
        "observers": str(copy.parquet("observers")),
        "quality": None if every_grade else list(filters.quality),
        "swlat": swlat,
        "swlng": swlng,
        "nelat": nelat,
        "nelng": nelng,
        "observed_from": filters.observed_from,
        "observed_to": filters.observed_to,
        "licenses": list(filters.licenses),
        "extensions": list(IMAGE_EXTENSIONS),
        "size": size,
        "base_url": base_url.rstrip("/"),
        "observation_url": OBSERVATION_URL,
    }


def _reader(
    sql: str, copy: Copy, open_data_dir: Path, taxa: Sequence[PlannedTaxon], size: str, filters: Filters,
    base_url: str, batch_rows: int,
) -> Iterator[pa.RecordBatch]:  # fmt: skip
    """The query's result as Arrow record batches, streamed from the engine."""
    if not taxa:
        return
    con = connect(open_data_dir)
    try:
        relation = con.sql(sql, params=plan_parameters(copy, taxa, size, filters, base_url))
        # The reader's name changed over DuckDB's versions (to_arrow_reader since 1.4).
        names = ("to_arrow_reader", "record_batch")
        reader = next(method for name in names if (method := getattr(relation, name, None)) is not None)
        yield from reader(batch_rows)
    finally:
        con.close()


def planned_photos(
    copy: Copy,
    open_data_dir: Path,
    taxa: Sequence[PlannedTaxon],
    size: str,
    filters: Filters,
    base_url: str,
    batch_rows: int = PLAN_BATCH_ROWS,
) -> Iterator[list[dict[str, Any]]]:
    """The job's photos in batches of rows keyed by PLAN_COLUMNS, each taxon's in photo id
    order (the order of its cursor), streamed from the engine."""
    for batch in _reader(PLAN_SQL, copy, open_data_dir, taxa, size, filters, base_url, batch_rows):
        yield batch.to_pylist()


# The plan file's columns (handoff.PLAN_FILE_TYPES, split aside), made by the engine too.
PLAN_FILE_SQL = f"""
SELECT url, taxon_name AS label, photo_id, NULL::BIGINT AS observation_id, taxon_id, taxon_name,
       observed_taxon_id, observed_taxon_name, $size AS size, license_code, attribution, observer,
       quality_grade, latitude, longitude, observed_on, observation_url, observation_uuid,
       positional_accuracy, NULL::BOOLEAN AS coordinates_obscured
FROM ({PLAN_SQL})
"""
# The engine writes them, in plan order, to a scratch file ({target}, a quoted literal).
SORTED_PLAN_SQL = f"COPY ({PLAN_FILE_SQL}) TO {{target}} (FORMAT parquet, ROW_GROUP_SIZE {{rows}})"


def planned_tables(
    copy: Copy,
    open_data_dir: Path,
    taxa: Sequence[PlannedTaxon],
    size: str,
    filters: Filters,
    base_url: str,
    batch_rows: int = PLAN_FILE_BATCH_ROWS,
) -> Generator[pa.Table, None, None]:
    """The plan file's rows as Arrow tables of ``batch_rows``, in plan order: no Python
    object a photo. The engine sorts them into a scratch Parquet file that is read back a
    batch at a time: handed over as Arrow straight from the sort, they held ~100 MB more
    outside the engine's memory limit, growing with the dump (benchmarks/results.md)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not taxa:
        return
    scratch = _sorted_plan(copy, open_data_dir, taxa, size, filters, base_url, batch_rows)
    try:
        sorted_plan = pq.ParquetFile(scratch)
        try:
            for batch in sorted_plan.iter_batches(batch_size=batch_rows):
                yield pa.Table.from_batches([batch])
        finally:
            sorted_plan.close()
    finally:
        scratch.unlink(missing_ok=True)  # read whole, or the plan given up


def _sorted_plan(
    copy: Copy, open_data_dir: Path, taxa: Sequence[PlannedTaxon], size: str, filters: Filters,
    base_url: str, rows: int,
) -> Path:  # fmt: skip
    """The plan file's rows, in plan order, as a scratch Parquet file in the engine's
    temporary folder (its types as the engine infers them: handoff writes the plan's own)."""
    import duckdb

    fd, name = tempfile.mkstemp(prefix="plan-", suffix=".parquet", dir=temp_folder(open_data_dir))
    os.close(fd)
    scratch = Path(name)
    con = connect(open_data_dir)
    try:
        # The ORDER BY fixes the order COPY writes in, whatever preserve_insertion_order says
        # (set to true, the joins under the sort kept their order too, and ran out of memory).
        sql = SORTED_PLAN_SQL.format(target=sql_literal(name), rows=rows)
        con.execute(sql, plan_parameters(copy, taxa, size, filters, base_url))
    except BaseException as exc:
        scratch.unlink(missing_ok=True)  # the COPY was cut short
        if isinstance(exc, duckdb.IOException) and "space left" in str(exc).lower():
            full = OSError(errno.ENOSPC, "No space left on device")
            raise disk_error(full, scratch.parent, "use --open-data-dir") from None
        raise
    finally:
        con.close()
    return scratch
