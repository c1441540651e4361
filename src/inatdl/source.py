"""The seam between what lists a job's photos and what downloads them.

A :class:`PhotoSource` turns a job (the listed taxa, size, filters and cap) into batches of
new photo records, each with the cursors to save with it. The pipeline (feed.py) records a
batch's rows as pending and its cursors in one state transaction, then queues the rows for
the worker pool: the pool, the state and the byte budget never know which source fed them.

What every source shares is done once, outside the sources (feed.py): each taxon's report,
the photos it holds already (downloaded, pending or failed: what ``--max-per-taxon``
counts), the retries of earlier runs (queued from the state before the source is asked),
and the effects of a batch (the state transaction, file moves, the queue).

A source's own job is to list what is new since each taxon's cursor, route each photo to
the most specific listed taxon, skip the photos the filters refuse (as a ``Skip`` in the
batch: every run reports them), and stop listing a taxon once it holds its cap.

A job is one size. A source that can list several sizes in one pass (:class:`SizesInOneWalk`:
the API listing, whose requests are the job's cost) is given the jobs of every size
together; any other is asked size by size (:func:`batches_of`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from inatdl.observations import Filters
from inatdl.photo import PhotoRecord
from inatdl.report import TaxonReport
from inatdl.state import Cursor, Skip


@dataclass
class ListedTaxon:
    """A taxon of the job, as every source sees it; ``held`` is updated by the source as it
    lists (and by the pipeline when a photo moves between taxa)."""

    taxon_id: int
    name: str
    folder: str  # photos/<folder>: where its photos go, relative to the data dir
    key: str  # PhotoSource.key: the name of its cursor, saved on each of its photos
    after: int  # its cursor: every photo up to this position is recorded (0: none yet)
    held: int  # photos downloaded, pending or failed: what --max-per-taxon counts
    report: TaxonReport

    def path(self, photo_id: int, size: str, extension: str) -> str:
        """Where a photo of this taxon is written, relative to the data dir."""
        return f"{self.folder}/{photo_id}_{size}.{extension}"


class ListingProgress(Protocol):
    """What a source tells the progress display while it lists: a batch's photos to download
    (``listed``) before the batch is yielded, and before the pages they came from are told
    done, so that the job's total is exact once no page is left (the workers' queue may hold
    the photos back for long before they enter it)."""

    def listing(self, taxon: str) -> None: ...  # paging the API's observations of these taxa
    def listing_open_data(self, taxa: int) -> None: ...  # the open data's photos of so many taxa
    def paged(self, done: int, left: int) -> None: ...  # pages of the whole job so far, and left
    def listed(self, count: int) -> None: ...  # photos to download: retries, each batch's rows


@dataclass(frozen=True)
class Job:
    """What a source lists: ``taxa`` by id, in the order taxa.csv names them."""

    taxa: Mapping[int, ListedTaxon]
    size: str
    filters: Filters
    max_per_taxon: int | None
    progress: ListingProgress

    def has_room(self, taxon: ListedTaxon) -> bool:
        """Whether the taxon may take one more photo under --max-per-taxon."""
        return self.max_per_taxon is None or taxon.held < self.max_per_taxon

    def to_list(self) -> dict[int, int]:
        """The taxa still to list (room under the cap), each with its cursor."""
        return {t.taxon_id: t.after for t in self.taxa.values() if self.has_room(t)}


@dataclass(frozen=True)
class Move:
    """A photo downloaded under one taxon whose observation now goes to a more specific
    taxon listed since (a variety added to the list): its file and row move, no request."""

    row: PhotoRecord  # as it now belongs, new taxon, path and key
    old_taxon_id: int
    old_path: str


@dataclass(frozen=True)
class Batch:
    """New photos to record as pending and download, the photos listed but refused by the
    filters, the cursors to save in the same transaction, and photos already downloaded to
    move to another taxon's folder."""

    rows: Sequence[PhotoRecord]
    cursors: Sequence[Cursor]
    moves: Sequence[Move] = field(default=())
    skips: Sequence[Skip] = field(default=())


class PhotoSource(Protocol):
    """Lists the photos of a job, batch by batch.

    Cursor: an int per taxon and key, in the source's own order (the API listing: an
    observation id); every photo of the taxon up to it is recorded in the state. A source
    starts each taxon from ``ListedTaxon.after`` and saves a cursor only where all photos up
    to it are in that batch or an earlier one, so a run stopped at any batch resumes there.

    Cap: a source lists only ``Job.to_list()`` and keeps a taxon's photos at or under the
    cap (``Job.has_room`` before each photo, ``held += 1`` for each kept); a taxon that
    reaches it keeps its cursor before the first item whose photos were not all kept.
    Retries of earlier runs are not a source's business: they are queued before it is asked.

    The caller stops iterating when the run stops; a source holds no state between runs
    but what is in the state file.
    """

    def key(self, taxon_id: int, size: str) -> str:
        """Names a taxon's walk under this source's filters: its cursor and its photos' rows."""
        ...

    def batches(self, job: Job) -> Iterator[Batch]:
        """The job's new photos, in batches small enough for one transaction each."""
        ...


@runtime_checkable
class SizesInOneWalk(Protocol):
    """A source that lists several sizes of the same photos at once (the API listing: one
    walk of the observations, whatever the number of sizes, as the requests are its cost)."""

    def sized_batches(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, Batch]]:
        """The batches of every job (one a size, the same taxa and filters), each with its job."""
        ...


def batches_of(source: PhotoSource, jobs: Sequence[Job]) -> Iterator[tuple[Job, Batch]]:
    """Every job's batches: in one walk where the source can list the sizes at once, else
    size by size."""
    if isinstance(source, SizesInOneWalk):
        yield from source.sized_batches(jobs)
        return
    for job in jobs:
        for batch in source.batches(job):
            yield job, batch
