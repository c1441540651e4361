"""`photos fetch`: page each taxon's observations, record their photos, download them.

The listing (main thread) and the downloads (worker threads) overlap: each page's photos
are recorded as pending in the state store with the paging cursor, in one transaction,
then queued; a bounded queue keeps memory flat however many observations a taxon has.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from inatdl.budget import ByteBudget
from inatdl.client import ApiClient
from inatdl.clock import Clock
from inatdl.constants import DRY_RUN_SAMPLE, MANIFEST_FILE, PHOTOS_DIR, SIZE_SAMPLE, STATE_FILE
from inatdl.download import PART_SUFFIX, Downloader, PhotoSizes, head_length
from inatdl.errors import ApiError, InatdlError, LimitReached
from inatdl.files import disk_error
from inatdl.manifest import write_manifest
from inatdl.naming import safe_folder_name
from inatdl.observations import (
    Filters,
    choose_photo,
    observation_fields,
    observation_pages,
    observation_photos,
)
from inatdl.state import DONE, FAILED, GONE, PENDING, DataDirLock, Outcome, PhotoJob, Store
from inatdl.taxa import TaxonRow

log = logging.getLogger("inatdl")


@dataclass(frozen=True)
class FetchOptions:
    """Everything `photos fetch` was asked to do."""

    size: str
    filters: Filters
    workers: int
    hourly_limit: int
    daily_limit: int
    wait: bool = True
    max_per_taxon: int | None = None
    dry_run: bool = False


@dataclass
class TaxonReport:
    """What happened to one taxon in this run."""

    taxon_id: int
    name: str
    listed: int = 0
    queued: int = 0
    had: int = 0
    downloaded: int = 0
    bytes: int = 0
    failed: int = 0
    gone: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    estimated_bytes: int = 0


@dataclass
class FetchReport:
    """The whole run, for the summary and the exit code."""

    taxa: list[TaxonReport]
    manifest: Path
    dry_run: bool = False
    interrupted: bool = False
    error: InatdlError | None = None
    spent: dict[str, int] = field(default_factory=dict)  # bytes in each window at the end
    limits: dict[str, int] = field(default_factory=dict)
    sent: int = 0  # bytes the photo hosts sent this run, as the ledger counts them
    overruns: list[str] = field(default_factory=list)  # what went past a limit, and why

    def total(self, attribute: str) -> int:
        return sum(getattr(t, attribute) for t in self.taxa)


class Reporter(Protocol):
    """Where progress goes: a tqdm bar, plain log lines, or nowhere."""

    def listing(self, taxon: str) -> None: ...
    def queued(self, count: int) -> None: ...
    def finished(self, outcome: Outcome) -> None: ...
    def waiting(self, message: str) -> None: ...
    def close(self) -> None: ...


class SilentReporter:
    def listing(self, taxon: str) -> None: ...
    def queued(self, count: int) -> None: ...
    def finished(self, outcome: Outcome) -> None: ...
    def waiting(self, message: str) -> None: ...
    def close(self) -> None: ...


_STOP = None
ABORT_GRACE_SECONDS = 5.0


class _Run:
    """One fetch over a locked data dir."""

    def __init__(
        self,
        client: ApiClient,
        data_dir: Path,
        store: Store,
        options: FetchOptions,
        clock: Clock,
        reporter: Reporter,
    ) -> None:
        self.client = client
        self.data_dir = data_dir
        self.store = store
        self.options = options
        self.reporter = reporter
        self.halt = threading.Event()  # start nothing new
        self.abort = threading.Event()  # and drop what is in flight (Ctrl-C, a full disk)
        self.fatal: BaseException | None = None
        self.budget = ByteBudget(
            store,
            clock,
            options.hourly_limit,
            options.daily_limit,
            wait=options.wait,
            on_wait=reporter.waiting,
            cancel=self.abort,
        )
        self.downloader = Downloader(
            client.session,
            data_dir,
            self.budget,
            clock,
            self.abort,
            timeout=client.timeout,
            sizes=PhotoSizes(lambda size: store.recent_sizes(size, SIZE_SAMPLE)),
        )
        self.jobs: queue.Queue[PhotoJob | None] = queue.Queue(maxsize=max(16, options.workers * 4))
        self.reports: dict[int, TaxonReport] = {}
        self._lock = threading.Lock()

    # Workers ---------------------------------------------------------------------------

    def _work(self) -> None:
        while (job := self.jobs.get()) is not _STOP:
            if self.halt.is_set():
                continue
            try:
                outcome = self.downloader.download(job)
                if outcome.status != PENDING:
                    self.store.record(outcome)
                self._count(outcome)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """Stop the run for ``exc``; at a byte limit, the downloads in flight still finish."""
        with self._lock:
            if self.fatal is None or isinstance(self.fatal, LimitReached):
                self.fatal = exc  # a worse error than a limit is the one to tell
        self.halt.set()
        if not isinstance(exc, LimitReached):
            self.abort.set()

    def _interrupt(self) -> None:
        self.halt.set()
        self.abort.set()

    def _count(self, outcome: Outcome) -> None:
        with self._lock:
            report = self.reports[outcome.job.taxon_id]
            if outcome.status == DONE:
                report.downloaded += not outcome.already_there
                report.had += outcome.already_there
                report.bytes += 0 if outcome.already_there else outcome.bytes
            elif outcome.status == FAILED:
                report.failed += 1
                report.errors[outcome.error] += 1
            elif outcome.status == GONE:
                report.gone += 1
        self.reporter.finished(outcome)

    def _put(self, job: PhotoJob) -> None:
        self.reports[job.taxon_id].queued += 1
        self.reporter.queued(1)
        if self.options.dry_run:
            return
        while not self.halt.is_set():
            try:
                self.jobs.put(job, timeout=0.2)
                return
            except queue.Full:
                continue

    # Listing ---------------------------------------------------------------------------

    def list_taxon(self, taxon: TaxonRow) -> None:
        """Queue what earlier runs with these filters left to do, then page on from the cursor."""
        assert taxon.taxon_id is not None
        taxon_id, size, cap = taxon.taxon_id, self.options.size, self.options.max_per_taxon
        report = self.reports[taxon_id] = TaxonReport(taxon_id, taxon.name)
        folder = f"{PHOTOS_DIR}/{safe_folder_name(taxon.name, str(taxon_id))}"
        self.reporter.listing(taxon.name)
        filters = self.options.filters
        query = filters.key(taxon_id, size)
        self.store.forget_other_listings(taxon_id, size, query)
        counts = self.store.status_counts(taxon_id, size)
        report.had = counts.get(DONE, 0)
        held = report.had + counts.get(PENDING, 0) + counts.get(FAILED, 0)
        retries = self.store.jobs_to_retry(taxon_id, size)
        for job in itertools.islice(retries, None if cap is None else max(0, cap - report.had)):
            if self.halt.is_set():
                return
            self._put(job)
        if cap is not None and held >= cap:
            return
        cursor = self.store.cursor(query)
        for page in observation_pages(self.client, filters.params(taxon_id), cursor):
            rows, last_complete, held, full = self._page_rows(page, taxon, folder, query, held, report)
            if rows or last_complete:
                cursor = last_complete or cursor
                self.store.record_page(query, taxon_id, cursor, rows)
            for row in rows:
                self._put(PhotoJob(row[0], size, row[7], row[8], taxon_id))
            if full or self.halt.is_set():
                return

    def _page_rows(
        self,
        page: Sequence[dict[str, Any]],
        taxon: TaxonRow,
        folder: str,
        query: str,
        held: int,
        report: TaxonReport,
    ) -> tuple[list[tuple[Any, ...]], int, int, bool]:
        """The new photo rows of a page, up to --max-per-taxon, and the last observation
        whose photos all made it (the cursor; 0 when the cap came inside the first)."""
        size, cap = self.options.size, self.options.max_per_taxon
        photos = [(observation, observation_photos(observation)) for observation in page]
        known = self.store.existing([p["id"] for _, listed in photos for p in listed], size)
        rows: list[tuple[Any, ...]] = []
        last_complete = 0
        for observation, listed in photos:
            fields = observation_fields(observation)
            for photo in listed:
                choice = choose_photo(photo, self.options.filters.licenses, size)
                report.listed += 1
                if choice.skip:
                    report.skipped[choice.skip] += 1
                    continue
                if choice.photo_id in known:
                    continue
                if cap is not None and held >= cap:
                    return rows, last_complete, held, True
                held += 1
                known.add(choice.photo_id)
                path = f"{folder}/{choice.photo_id}_{size}.{choice.extension}"
                rows.append((
                    choice.photo_id, size, taxon.taxon_id, taxon.name, fields["observation_id"],
                    fields["observed_taxon_id"], fields["observed_taxon_name"], choice.url, path,
                    choice.license_code, choice.attribution, fields["observer"],
                    fields["quality_grade"], fields["latitude"], fields["longitude"],
                    fields["observed_on"], fields["observation_url"], query,
                ))  # fmt: skip
            last_complete = fields["observation_id"]
        return rows, last_complete, held, cap is not None and held >= cap

    # The run ---------------------------------------------------------------------------

    def run(self, taxa: Iterable[TaxonRow]) -> FetchReport:
        workers = (
            []
            if self.options.dry_run
            else [
                threading.Thread(target=self._work, name=f"inatdl-worker-{i}", daemon=True)
                for i in range(self.options.workers)
            ]
        )
        for worker in workers:
            worker.start()
        report = FetchReport([], self.data_dir / MANIFEST_FILE, dry_run=self.options.dry_run)
        try:
            for taxon in taxa:
                if self.halt.is_set():
                    break
                self.list_taxon(taxon)
        except ApiError as exc:
            report.error = exc  # the downloads already queued still finish
        except KeyboardInterrupt:
            report.interrupted = True
            self._interrupt()
        except BaseException:
            self._interrupt()
            raise
        finally:
            report.interrupted |= self._finish(workers)
            report.taxa = list(self.reports.values())
        if self.fatal is not None:
            if isinstance(self.fatal, InatdlError):
                report.error = self.fatal
            else:
                raise self.fatal
        if self.options.dry_run and not report.interrupted:
            self.estimate(report)
        report.spent = {window: self.budget.spent(window) for window in self.budget.windows}
        report.limits = {name: window.limit for name, window in self.budget.windows.items()}
        report.sent, report.overruns = self.budget.sent, self.budget.overruns
        return report

    def _finish(self, workers: list[threading.Thread]) -> bool:
        """Let the workers end (after the queue, or at once when stopping); True if Ctrl-C."""
        interrupted = False
        for _ in workers:
            while True:
                try:
                    self.jobs.put(_STOP, timeout=0.2)
                    break
                except queue.Full:
                    if self.halt.is_set():
                        _drain(self.jobs)
                except KeyboardInterrupt:
                    interrupted = True
                    self._interrupt()
        give_up_at: float | None = None
        for worker in workers:
            while worker.is_alive():
                if self.abort.is_set():
                    # A worker stuck in a stalled read is left behind (a daemon thread);
                    # its temporary file is swept by the next run.
                    give_up_at = give_up_at or time.monotonic() + ABORT_GRACE_SECONDS
                    if time.monotonic() >= give_up_at:
                        break
                try:
                    worker.join(timeout=0.2)
                except KeyboardInterrupt:
                    interrupted = True
                    self._interrupt()
        self.budget.close()
        self.store.flush()
        return interrupted

    def estimate(self, report: FetchReport) -> None:
        """For --dry-run: the size of a few photos, asked with HEAD, scaled to the rest."""
        sampled: list[int] = []
        for taxon in report.taxa:
            jobs = self.store.jobs_to_retry(taxon.taxon_id, self.options.size, batch=DRY_RUN_SAMPLE)
            for job in itertools.islice(jobs, DRY_RUN_SAMPLE):
                length = head_length(self.downloader.session, job.url, self.client.timeout)
                if length is not None:
                    sampled.append(length)
        average = sum(sampled) // len(sampled) if sampled else 0
        for taxon in report.taxa:
            counts = self.store.status_counts(taxon.taxon_id, self.options.size)
            taxon.queued = counts.get(PENDING, 0) + counts.get(FAILED, 0)
            taxon.estimated_bytes = taxon.queued * average


def _drain(jobs: queue.Queue[PhotoJob | None]) -> None:
    while True:
        try:
            jobs.get_nowait()
        except queue.Empty:
            return


def sweep_photos(data_dir: Path, store: Store) -> None:
    """Remove temporaries a crash left, and mark photos whose file was deleted as to do."""
    for leftover in data_dir.glob(".*.part"):  # of photos.csv or taxa.csv
        leftover.unlink()
    photos = data_dir / PHOTOS_DIR
    present: set[str] = set()
    if photos.is_dir():
        for folder in os.scandir(photos):
            if not folder.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(folder.path):
                if entry.name.endswith(PART_SUFFIX):
                    os.unlink(entry.path)
                else:
                    present.add(f"{PHOTOS_DIR}/{folder.name}/{entry.name}")
    missing = [(pid, size) for pid, size, path in store.done_paths() if path not in present]
    if missing:
        log.info("%d downloaded photos are no longer on disk; fetching them again", len(missing))
        store.mark_missing(missing)


def fetch_photos(
    client: ApiClient,
    data_dir: Path,
    taxa: Sequence[TaxonRow],
    options: FetchOptions,
    clock: Clock,
    reporter: Reporter | None = None,
) -> FetchReport:
    """Fetch the photos of ``taxa`` into ``data_dir``; safe to stop and run again."""
    reporter = reporter or SilentReporter()
    with DataDirLock(data_dir):
        store = Store(data_dir / STATE_FILE, clock)
        try:
            try:
                sweep_photos(data_dir, store)
            except OSError as exc:
                raise disk_error(exc, data_dir / PHOTOS_DIR) from None
            run = _Run(client, data_dir, store, options, clock, reporter)
            try:
                report = run.run(taxa)
            finally:
                reporter.close()
            if not options.dry_run:
                write_manifest(store, report.manifest)
            return report
        finally:
            store.close()
