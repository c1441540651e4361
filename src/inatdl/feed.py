"""What the listing does the same whatever the source: take over what earlier runs left
(each taxon's report, the photos it holds, its retries), then apply each batch a source
yields: moves, then the rows and cursors in one state transaction, then the queue.

A batch is applied in that order so that a kill at any instant loses nothing: a move is in
the state before the cursor that passes its observation, and a photo is queued only once
its row is committed.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from inatdl.constants import PHOTOS_DIR
from inatdl.naming import safe_folder_name
from inatdl.observations import Filters
from inatdl.pool import Stop
from inatdl.report import TaxonReport
from inatdl.source import Batch, Job, ListedTaxon, ListingProgress, Move, PhotoSource, batches_of
from inatdl.state import DONE, FAILED, PENDING, PhotoJob, Store
from inatdl.taxa import TaxonRow

log = logging.getLogger("inatdl")

Queue = Callable[[PhotoJob], None]  # hands a photo to the workers (or, in a dry run, counts it)


def take_over(
    store: Store,
    source: PhotoSource,
    taxa: Iterable[TaxonRow],
    size: str,
    cap: int | None,
    queue: Queue,
    stop: Stop,
    listed: dict[int, ListedTaxon],
    progress: ListingProgress,
) -> None:
    """Each taxon of the run into ``listed`` (once, in order) with what earlier runs left:
    the photos it holds; then their pending and failed photos queued again (up to the cap),
    told to ``progress`` first. Every taxon is listed before any photo is queued, so a stop
    still reports each one."""
    done: dict[int, int] = {}
    queued_again = 0
    for taxon in taxa:
        assert taxon.taxon_id is not None
        if taxon.taxon_id in listed:
            continue
        taxon_id = taxon.taxon_id
        key = source.key(taxon_id, size)
        store.forget_other_listings(taxon_id, size, key)
        counts = store.status_counts(taxon_id, size)
        done[taxon_id] = counts.get(DONE, 0)
        held = done[taxon_id] + counts.get(PENDING, 0) + counts.get(FAILED, 0)
        to_retry = held - done[taxon_id]
        queued_again += to_retry if cap is None else min(to_retry, max(0, cap - done[taxon_id]))
        folder = f"{PHOTOS_DIR}/{safe_folder_name(taxon.name, str(taxon_id))}"
        report = TaxonReport(taxon_id, taxon.name, size)
        listed[taxon_id] = ListedTaxon(taxon_id, taxon.name, folder, key, store.cursor(key), held, report)
    progress.listed(queued_again)
    for taxon_id, had in done.items():
        retries = store.jobs_to_retry(taxon_id, size)
        for job in itertools.islice(retries, None if cap is None else max(0, cap - had)):
            if stop.dropping:  # at a limit they are still handed on: those complete on disk are recorded
                return
            queue(job)


class Feeder:
    """Applies the batches of a source to the state, the photos folder and the queue."""

    def __init__(self, store: Store, data_dir: Path, queue: Queue, untracked: set[str], moves: bool) -> None:
        self.store = store
        self.data_dir = data_dir
        self.queue = queue
        self.untracked = untracked  # files a photo new to the state may find there
        self.moves = moves  # False in a dry run: nothing on disk changes
        self.moved = 0  # downloaded photos moved to a more specific taxon's folder

    def feed(self, source: PhotoSource, jobs: Sequence[Job], stop: Stop) -> None:
        """Apply the source's batches of every job (size) until it is done or the run stops."""
        for job, batch in batches_of(source, jobs):
            self.apply(batch, job)
            if stop.stopping:
                return

    def apply(self, batch: Batch, job: Job) -> None:
        if self.moves:
            for move in batch.moves:
                self.move(move, job)
        self.store.record_page(batch.cursors, batch.rows, batch.skips)
        for row in batch.rows:
            may_be_on_disk = row.path in self.untracked
            self.queue(PhotoJob(row.photo_id, row.size, row.url, row.path, row.taxon_id, may_be_on_disk))

    def move(self, move: Move, job: Job) -> None:
        """Move a downloaded photo's file to its new taxon's folder, with no request. Linked
        before the state names the new path and unlinked after, so a kill at any instant
        leaves the file where the state says."""
        row = move.row
        if move.old_path == row.path:  # a taxon named as the one it was under (genus, subgenus)
            self._moved(move, job)
            return
        source, target = self.data_dir / move.old_path, self.data_dir / row.path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.link(source, target)
        except OSError as exc:
            log.warning("could not move %s to %s: %s; it stays where it is", move.old_path, row.path, exc)
            return
        self._moved(move, job)
        source.unlink(missing_ok=True)

    def _moved(self, move: Move, job: Job) -> None:
        """The state of a photo now the more specific taxon's; the other holds one less."""
        self.store.move_photo(move.row)
        self.moved += 1
        if (old := job.taxa.get(move.old_taxon_id)) is not None:
            old.held -= 1


@dataclass(frozen=True)
class Asked:
    """What the run asks of every source: the sizes, the filters and the cap."""

    sizes: tuple[str, ...]
    filters: Filters
    max_per_taxon: int | None


def list_job(
    source: PhotoSource,
    feeder: Feeder,
    taxa: Sequence[TaxonRow],
    asked: Asked,
    progress: ListingProgress,
    stop: Stop,
    listed: Mapping[str, dict[int, ListedTaxon]],
) -> None:
    """Take over what earlier runs left of each taxon at each size (into ``listed``, by
    size), then feed the source's batches of every size (in one walk where the source can)
    until done or stopped."""
    cap = asked.max_per_taxon
    for size in asked.sizes:
        take_over(feeder.store, source, taxa, size, cap, feeder.queue, stop, listed[size], progress)
        if stop.stopping:
            return
    jobs = [Job(listed[size], size, asked.filters, cap, progress) for size in asked.sizes]
    feeder.feed(source, jobs, stop)


def settle(taxa: Collection[ListedTaxon], store: Store, size: str) -> list[TaxonReport]:
    """The taxa's reports, completed from the state at the end of the run (TaxonReport.settle)."""
    for taxon in taxa:
        taxon.report.settle(store.status_counts(taxon.taxon_id, size), store.skip_counts(taxon.key))
    return [taxon.report for taxon in taxa]
