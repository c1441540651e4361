"""`records fetch`: every observation under a filter, as Darwin Core records in one file.

The walk is `photos fetch`'s (``observation_pages``: by ``id_above``, many taxa a query,
the same filters) without the photo conditions, so observations without photos or with
all-rights-reserved photos are records too. The file is incremental: beside it a cursor
file says, for each taxon walked (or for every taxon at once), the observation id up to
which the file is complete, so a rerun asks only for newer observations; the file is
then rewritten whole, atomically, and its cursors after it. Rows are unique by
``catalogNumber`` (the observation id) and sorted by it.

A run stopped part-way (Ctrl-C, the API failing past its retries) still writes what it
got, with the cursors where each walk stood: the next run goes on from there.

pandas and pyarrow are imported by this module only, so only this command loads them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from inatdl.client import ApiClient
from inatdl.constants import OBSERVATIONS_PER_PAGE, QUALITY_GRADES, RECORDS_FILE, RECORDS_LOCK_FILE
from inatdl.darwin_core import COLUMNS, FLOAT_COLUMNS, INTEGER_COLUMNS, darwin_core_record
from inatdl.errors import ApiError, NoTaxaError, NothingObservedError
from inatdl.files import atomic_binary_writer, atomic_write_text, atomic_writer
from inatdl.observations import Filters, observation_pages
from inatdl.observed_taxa import resolve_within
from inatdl.plan import plan_queries
from inatdl.state import DataDirLock
from inatdl.taxa import TaxonRow, load_resolved_taxa

log = logging.getLogger("inatdl")

FORMATS = ("csv", "parquet")
EVERY_TAXON = "*"  # the cursor of a walk over every taxon (--place-id without --within)
CURSORS_VERSION = 1
# Only the photo conditions of `photos fetch`'s query are left out: a record needs no photo.
_PHOTO_PARAMS = ("photos", "photo_license")


@dataclass(frozen=True)
class RecordsQuery:
    """What `records fetch` was asked for: the filters, and the taxa (None: every taxon)."""

    filters: Filters
    taxa: tuple[TaxonRow, ...] | None
    format: str = "csv"

    def params(self, taxon_ids: Sequence[int]) -> dict[str, Any]:
        """The /observations query of these taxa (or of every taxon), paging aside."""
        params = self.filters.params(taxon_ids)
        for name in _PHOTO_PARAMS:
            params.pop(name, None)
        if not taxon_ids:
            params.pop("taxon_id", None)
        return params

    def key(self) -> str:
        """Names the filter (taxa aside): the file holds the records of one filter."""
        params = self.params([])
        return "&".join(f"{name}={_sorted_list(params[name])}" for name in sorted(params))


@dataclass
class RecordsReport:
    """What the run did, for the summary."""

    path: Path
    records: int = 0  # rows in the file written
    new: int = 0  # of them, observations first recorded by this run
    pages: int = 0  # observation pages asked
    api_requests: int = 0  # retries included
    started_over: str = ""  # why the rows of the file before were not kept
    stopped: BaseException | None = field(default=None, repr=False)  # Ctrl-C or ApiError, after saving


def records_taxa(
    client: ApiClient, data_dir: Path, place_id: int | None, within: str | None
) -> tuple[TaxonRow, ...] | None:
    """The taxa whose records are asked: ``--within``'s taxon; every taxon of the place
    (None) with ``--place-id`` alone; else those of taxa.csv."""
    if within:
        return (resolve_within(client, within),)
    if place_id is not None:
        return None
    try:
        return tuple(load_resolved_taxa(data_dir))
    except NoTaxaError as exc:
        raise NoTaxaError(f"{exc}; or give --place-id or --within for every taxon there") from None


def records_path(data_dir: Path, file_format: str) -> Path:
    return data_dir / f"{RECORDS_FILE}.{file_format}"


def cursors_path(records: Path) -> Path:
    """Beside the records file: the cursors that go with it (one per file and format)."""
    return records.with_name(f".{records.name}.cursors.json")


def fetch_records(
    client: ApiClient,
    data_dir: Path,
    query: RecordsQuery,
    on_page: Callable[[int, int], None] | None = None,
) -> RecordsReport:
    """Add the observations under ``query`` newer than the file's cursors to the records file.

    ``on_page(done, left)`` hears after each page how many were asked and about how many
    remain. A Ctrl-C or an API failure stops the walk; what was fetched is still written,
    and the report's ``stopped`` holds the exception for the caller to raise.
    """
    path = records_path(data_dir, query.format)
    report = RecordsReport(path)
    with DataDirLock(data_dir, RECORDS_LOCK_FILE):
        kept, cursors, report.started_over = _load(path, query)
        walk = _Walk(client, query, cursors, on_page)
        requests_before = client.requests_made
        try:
            walk.run()
        except (KeyboardInterrupt, ApiError) as exc:
            report.stopped = exc
        report.pages = walk.pages
        report.api_requests = client.requests_made - requests_before
        if report.stopped is not None and not walk.frames:
            return report  # nothing new: the file stays as it was
        table = _merge(kept, walk.frames)
        if table.empty:  # a filter that matches nothing never replaces an earlier export
            raise NothingObservedError(_nothing_matched(query, path))
        report.records = len(table)
        report.new = report.records - (0 if kept is None else len(kept))
        _save(path, query, table, walk.cursors)
    return report


class _Walk:
    """The query plan over the taxa's cursors, paged; the records and cursors it reached."""

    def __init__(
        self,
        client: ApiClient,
        query: RecordsQuery,
        cursors: dict[str, int],
        on_page: Callable[[int, int], None] | None,
    ) -> None:
        self.client = client
        self.query = query
        self.cursors = cursors
        self.on_page = on_page
        self.frames: list[pd.DataFrame] = []
        self.pages = 0
        self.seen_up_to = max(cursors.values(), default=0)  # an observation id known to exist

    def run(self) -> None:
        walks: list[tuple[tuple[str, ...], int]]
        if self.query.taxa is None:
            walks = [((EVERY_TAXON,), self.cursors[EVERY_TAXON])]
        else:
            plan = plan_queries({int(taxon_id): last for taxon_id, last in self.cursors.items()})
            walks = [(tuple(str(t) for t in q.taxon_ids), q.after_id) for q in plan]
        for number, (keys, after_id) in enumerate(walks):
            self._walk(keys, after_id, queries_left=len(walks) - number - 1)

    def _walk(self, keys: tuple[str, ...], after_id: int, queries_left: int) -> None:
        """Page one query; its cursors move with each page, and when the walk ends they
        stand at the highest id seen so far: the taxa are complete up to an id that existed
        when their last page was asked (so walks that ended apart stand together again)."""
        taxon_ids = [] if keys == (EVERY_TAXON,) else [int(key) for key in keys]

        def remaining(observations: int) -> None:
            self.pages += 1
            if self.on_page is not None:
                self.on_page(self.pages, -(-observations // OBSERVATIONS_PER_PAGE) + queries_left)

        for page in observation_pages(self.client, self.query.params(taxon_ids), after_id, remaining):
            self.frames.append(_frame([darwin_core_record(o) for o in page]))
            position = max(int(o["id"]) for o in page)
            self.seen_up_to = max(self.seen_up_to, position)
            self.cursors.update(dict.fromkeys(keys, position))
        self.cursors.update(dict.fromkeys(keys, self.seen_up_to))


# The table: pandas dtypes that keep every value as it was sent, in both formats -----------

_STRING = pd.StringDtype("pyarrow")  # text held by Arrow: a fraction of Python strings' memory
_DTYPES: dict[str, Any] = {
    name: "Int64" if name in INTEGER_COLUMNS else "Float64" if name in FLOAT_COLUMNS else _STRING
    for name in COLUMNS
}


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records as a table of the file's columns and types."""
    return pd.DataFrame.from_records(records, columns=list(COLUMNS)).astype(_DTYPES)


def _merge(kept: pd.DataFrame | None, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The rows kept and the new ones, once each by observation id (the newest copy), sorted."""
    tables = ([] if kept is None else [kept]) + frames
    if not tables:
        return _frame([])
    table = pd.concat(tables, ignore_index=True)
    table = table.drop_duplicates("catalogNumber", keep="last")
    return table.sort_values("catalogNumber", kind="stable", ignore_index=True)


def _read(path: Path) -> pd.DataFrame:
    """The records file as written: every value of its type; a name such as "NA" or "nan"
    stays a name (only an empty field is empty).

    A CSV is read by Arrow with the column types given, not guessed: pandas' own readers
    guess differently from one version to the next, and Arrow's takes half their time and
    memory; its numbers are the very floats written.
    """
    if path.suffix == ".parquet":
        return pd.read_parquet(path).astype(_DTYPES)
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    arrow_types = {"Int64": pa.int64(), "Float64": pa.float64()}
    convert = pa_csv.ConvertOptions(
        column_types={name: arrow_types.get(str(dtype), pa.string()) for name, dtype in _DTYPES.items()},
        null_values=[""],
        strings_can_be_null=True,
    )
    table = pa_csv.read_csv(path, convert_options=convert)
    pandas_types = {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype(), pa.string(): _STRING}
    records: pd.DataFrame = table.to_pandas(types_mapper=pandas_types.get)
    return records


def _write(path: Path, table: pd.DataFrame) -> None:
    if path.suffix == ".parquet":
        with atomic_binary_writer(path) as binary:
            table.to_parquet(binary, index=False, engine="pyarrow")
    else:
        with atomic_writer(path) as text:
            table.to_csv(text, index=False, lineterminator="\n")


# The file and its cursors ----------------------------------------------------------------


def _load(path: Path, query: RecordsQuery) -> tuple[pd.DataFrame | None, dict[str, int], str]:
    """The rows to keep, each walk's cursor, and why the rows before were not kept ("" when
    they were, or when there were none).

    The rows are kept only when the cursors beside them were written for the same filter
    and for taxa the query still asks: a taxon no longer asked would leave its rows in a
    file that is no longer its filter's. A taxon newly asked starts at 0.
    """
    keys = [EVERY_TAXON] if query.taxa is None else [str(t.taxon_id) for t in query.taxa]
    fresh = dict.fromkeys(keys, 0)
    if not path.exists():
        return None, fresh, ""
    saved = _read_cursors(cursors_path(path))
    if saved is None:
        return None, fresh, f"{path.name} has no cursors beside it (made by another program?)"
    if saved.get("filter") != query.key():
        return None, fresh, f"the filter differs from the one {path.name} was made with"
    old = saved["cursors"]
    if not set(old) <= set(keys):
        return None, fresh, f"{path.name} holds records of taxa no longer asked for"
    try:
        kept = _read(path)
    except (ValueError, OSError) as exc:
        return None, fresh, f"{path.name} could not be read ({exc})"
    if list(kept.columns) != list(COLUMNS):
        return None, fresh, f"{path.name} does not have the columns of this version"
    return kept, {key: old.get(key, 0) for key in keys}, ""


def _read_cursors(path: Path) -> dict[str, Any] | None:
    """The cursor file, or None when it is missing or not one this version wrote."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("version") != CURSORS_VERSION:
        return None
    cursors = saved.get("cursors")
    if not isinstance(cursors, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in cursors.values()
    ):
        return None
    return saved


def _save(path: Path, query: RecordsQuery, table: pd.DataFrame, cursors: dict[str, int]) -> None:
    """The file, then its cursors: a crash between the two leaves cursors behind the file,
    so the next run asks again for rows it has (kept once each), never skips any; cursors
    of another filter or other taxa make it start over."""
    _write(path, table)
    document = {"version": CURSORS_VERSION, "filter": query.key(), "cursors": cursors}
    atomic_write_text(cursors_path(path), json.dumps(document, indent=1, sort_keys=True) + "\n")


def _nothing_matched(query: RecordsQuery, path: Path) -> str:
    """What to say of a filter that matches no observation: the filter, and the file kept."""
    filters, taxa = query.filters, query.taxa
    parts = [] if taxa is None else [f"of {taxa[0].name}" if len(taxa) == 1 else "of the taxa of taxa.csv"]
    if filters.place_id is not None:
        parts.append(f"in place {filters.place_id}")
    if set(filters.quality) != set(QUALITY_GRADES):
        parts.append(f"of quality {','.join(filters.quality)}")
    if filters.bbox is not None:
        parts.append("in the box " + ",".join(f"{degrees:g}" for degrees in filters.bbox))
    if filters.observed_from:
        parts.append(f"observed from {filters.observed_from}")
    if filters.observed_to:
        parts.append(f"observed up to {filters.observed_to}")
    kept = f"{path.name} was left as it was" if path.exists() else f"no {path.name} was written"
    return f"{' '.join(['no observation', *parts])}: {kept}; check the filters"


def _sorted_list(value: Any) -> str:
    """A comma list in a canonical order, so `--quality casual,research` is the same filter."""
    return ",".join(sorted(str(value).split(","))) if isinstance(value, str) else str(value)
