"""The open data as a photo source: the plan's rows become the same photo records, in the
same batches with cursors, that the API listing yields, so the state, the worker pool and
the byte budget never know which source fed them.

Cursor: a photo id. Each taxon's photos come in photo id order after its cursor, so a
batch's highest photo id of a taxon is a cursor every photo up to it is recorded for. A
photo already in the state at this size (under another taxon, or fetched from the API) is
not listed again: it is downloaded once; one downloaded under a taxon whose photos now go to
a more specific taxon listed since moves to that taxon's folder, as on the API route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from inatdl.constants import PUBLIC_DOMAIN
from inatdl.observations import Filters
from inatdl.opendata.columnar import Copy, require_copy
from inatdl.opendata.plan import PlannedTaxon, planned_photos
from inatdl.photo import PhotoRecord
from inatdl.source import Batch, Job, Move
from inatdl.state import DONE, Cursor, Store

KEY_PREFIX = "open-data&"  # an open-data walk never continues an API walk's cursor


class OpenDataSource:
    """Lists a job's photos from the synced dump, one query for the whole job."""

    def __init__(
        self, copy: Copy, open_data_dir: Path, base_url: str, store: Store, filters: Filters
    ) -> None:
        self.copy = copy
        self.open_data_dir = open_data_dir
        self.base_url = base_url
        self.store = store
        self.filters = filters
        self.pages_done = 0  # no API page is ever asked

    def key(self, taxon_id: int, size: str) -> str:
        public_domain = "&pd" if PUBLIC_DOMAIN in self.filters.licenses else ""  # the API's key leaves it out
        return KEY_PREFIX + self.filters.key(taxon_id, size) + public_domain

    def batches(self, job: Job) -> Iterator[Batch]:
        """The plan's rows in batches, each with the cursors of the taxa it holds."""
        cursors = job.to_list()
        cap = job.max_per_taxon
        taxa = [
            PlannedTaxon(t.taxon_id, t.name, t.folder, t.after, None if cap is None else max(0, cap - t.held))
            for t in job.taxa.values()
            if t.taxon_id in cursors
        ]
        job.progress.listing_open_data(len(taxa))
        for rows in planned_photos(
            self.copy, self.open_data_dir, taxa, job.size, self.filters, self.base_url
        ):
            recorded = self.store.recorded([row["photo_id"] for row in rows], job.size)
            homes = {pid: (taxon, path) for pid, (status, taxon, path) in recorded.items() if status == DONE}
            records, moves = [], []
            last: dict[int, int] = {}
            for row in rows:
                taxon = job.taxa[row["taxon_id"]]
                last[taxon.taxon_id] = row["photo_id"]
                home = homes.get(row["photo_id"])
                if row["photo_id"] in recorded and (home is None or home[0] == taxon.taxon_id):
                    continue
                record = self.record(row, job.size, taxon.key)
                if home is None:
                    records.append(record)
                else:  # downloaded under a taxon it no longer goes to: a variety listed since
                    moves.append(Move(record, *home))
                taxon.held += 1
                taxon.report.listed += 1
            saved = [Cursor(job.taxa[t].key, t, photo_id) for t, photo_id in last.items()]
            job.progress.listed(len(records))
            yield Batch(records, saved, moves)

    @staticmethod
    def record(row: dict[str, Any], size: str, key: str) -> PhotoRecord:
        """A plan row as the photo record every source yields."""
        return PhotoRecord(
            photo_id=row["photo_id"],
            observation_id=None,
            taxon_id=row["taxon_id"],
            taxon_name=row["taxon_name"],
            observed_taxon_id=row["observed_taxon_id"],
            observed_taxon_name=row["observed_taxon_name"],
            size=size,
            path=row["path"],
            url=row["url"],
            license_code=row["license_code"],
            attribution=row["attribution"],
            observer=row["observer"],
            quality_grade=row["quality_grade"],
            latitude=row["latitude"],
            longitude=row["longitude"],
            observed_on=row["observed_on"],
            observation_url=row["observation_url"],
            observation_uuid=row["observation_uuid"],
            positional_accuracy=row["positional_accuracy"],
            coordinates_obscured=None,  # the dump does not say
            query=key,
        )


def open_data_source(
    open_data_dir: Path, base_url: str, filters: Filters
) -> Callable[[Store], OpenDataSource]:
    """The source's factory for `photos fetch`: the synced copy is checked now (before the
    data dir is locked), so a missing sync is one clear error naming `opendata sync`."""
    copy = require_copy(open_data_dir)
    return lambda store: OpenDataSource(copy, open_data_dir, base_url, store, filters)
