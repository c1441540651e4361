"""`photos plan` on either route: the job's photos listed, then written by handoff.py.

The open-data route is one query over the columnar copy. The API route pages like `photos
fetch --dry-run` (the listing is kept in the state, so a later fetch asks only for what is
new) and reads the job's rows back from the state; neither downloads a photo.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inatdl.client import ApiClient
from inatdl.clock import Clock
from inatdl.constants import PHOTOS_DIR
from inatdl.fetch import FetchOptions, fetch_photos
from inatdl.naming import safe_folder_name
from inatdl.observations import Filters
from inatdl.opendata.columnar import require_copy
from inatdl.opendata.handoff import (
    PlanFileOptions,
    PlanFileReport,
    listed_in_state,
    tables_from_rows,
    write_plan_file,
)
from inatdl.opendata.plan import PlannedTaxon, planned_tables
from inatdl.taxa import TaxonRow

API_PLAN_WORKERS = 1  # a dry run downloads nothing; its few HEADs need no pool


@dataclass(frozen=True)
class PlanJob:
    """What `photos plan` was asked: the job as `photos fetch` takes it, and the file."""

    out: Path
    size: str
    filters: Filters
    max_per_taxon: int | None
    file: PlanFileOptions


def taxon_folder(taxon: TaxonRow) -> str:
    """photos/<folder> of a taxon, as `photos fetch` names it."""
    assert taxon.taxon_id is not None
    return f"{PHOTOS_DIR}/{safe_folder_name(taxon.name, str(taxon.taxon_id))}"


def planned_taxa(taxa: Sequence[TaxonRow], max_per_taxon: int | None) -> list[PlannedTaxon]:
    return [
        PlannedTaxon(t.taxon_id, t.name, taxon_folder(t), room=max_per_taxon)
        for t in taxa
        if t.taxon_id is not None
    ]


def open_data_plan(
    open_data_dir: Path, base_url: str, taxa: Sequence[TaxonRow], job: PlanJob
) -> PlanFileReport:
    """The plan from the synced dump: no request at all."""
    copy = require_copy(open_data_dir)
    tables = planned_tables(
        copy, open_data_dir, planned_taxa(taxa, job.max_per_taxon), job.size, job.filters, base_url
    )
    with contextlib.closing(tables):  # its scratch file goes now, even if the writing fails
        return write_plan_file(job.out, tables, job.file)


def api_plan(
    client: ApiClient, data_dir: Path, taxa: Sequence[TaxonRow], job: PlanJob, clock: Clock
) -> PlanFileReport:
    """The plan from the API: the listing of a dry run, read back from the state."""
    options = FetchOptions(
        (job.size,),
        job.filters,
        API_PLAN_WORKERS,
        10**18,
        10**18,
        max_per_taxon=job.max_per_taxon,
        dry_run=True,
    )
    report = fetch_photos(client, data_dir, taxa, options, clock)
    if report.error is not None:
        raise report.error
    if report.interrupted:
        raise KeyboardInterrupt
    keys = [(t.taxon_id, job.filters.key(t.taxon_id, job.size)) for t in taxa if t.taxon_id is not None]
    rows = listed_in_state(data_dir, keys, job.size, job.max_per_taxon)
    return write_plan_file(job.out, tables_from_rows(_sized(rows, job.size)), job.file)


def _sized(batches: Iterator[list[dict[str, Any]]], size: str) -> Iterator[list[dict[str, Any]]]:
    for batch in batches:
        for row in batch:
            row["size"] = size
        yield batch
