"""`photos fetch`: the orchestration of a run over a locked data dir.

The sweep of photos/ at the start, then the listing (feed.py, from a PhotoSource:
api_listing.py) on the main thread while the worker pool (pool.py) downloads, all under one
byte budget and one Stop; then photos.csv. Each batch of listed photos is recorded as
pending with its cursors in one transaction, then queued; a bounded queue keeps memory flat
however many observations a taxon has. A dry run lists the same way and estimates
(dry_run.py) instead of downloading.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from inatdl.api_listing import ApiListing
from inatdl.budget import ByteBudget, PhotoSizes
from inatdl.client import ApiClient
from inatdl.clock import Clock
from inatdl.constants import MANIFEST_FILE, PHOTOS_DIR, SIZE_SAMPLE, STATE_FILE
from inatdl.download import Downloader
from inatdl.dry_run import estimate
from inatdl.errors import ApiError, InatdlError
from inatdl.feed import Asked, Feeder, list_job, settle
from inatdl.files import disk_error
from inatdl.manifest import write_manifest
from inatdl.observations import Filters
from inatdl.pool import Pool, Stop
from inatdl.report import FetchReport, Tally, TaxonReport
from inatdl.reporter import Reporter, SilentReporter
from inatdl.source import ListedTaxon, PhotoSource
from inatdl.state import DataDirLock, PhotoJob, Store
from inatdl.sweep import OnDisk, sweep_photos
from inatdl.taxa import TaxonRow

__all__ = ["FetchOptions", "FetchReport", "Reporter", "SilentReporter", "TaxonReport", "fetch_photos"]

log = logging.getLogger("inatdl")
SourceFactory = Callable[[Store], PhotoSource]  # a photo source over the run's state


@dataclass(frozen=True)
class FetchOptions:
    """Everything `photos fetch` was asked to do."""

    sizes: tuple[str, ...]  # each photo is fetched in each, from one walk of the observations
    filters: Filters
    workers: int
    hourly_limit: int
    daily_limit: int
    wait: bool = True
    max_per_taxon: int | None = None
    dry_run: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.sizes, str):  # one size given as such, not as its letters
            object.__setattr__(self, "sizes", (self.sizes,))


def fetch_photos(
    client: ApiClient,
    data_dir: Path,
    taxa: Sequence[TaxonRow],
    options: FetchOptions,
    clock: Clock,
    reporter: Reporter | None = None,
    source: SourceFactory | None = None,
) -> FetchReport:
    """Fetch the photos of ``taxa`` into ``data_dir``; safe to stop and run again.
    ``source`` makes the photo source from the state (default: the API listing)."""
    reporter = reporter or SilentReporter()
    with DataDirLock(data_dir):
        store = Store(data_dir / STATE_FILE, clock)
        try:
            try:
                on_disk = sweep_photos(data_dir, store)
            except OSError as exc:
                raise disk_error(exc, data_dir / PHOTOS_DIR) from None
            report = FetchReport([], data_dir / MANIFEST_FILE, dry_run=options.dry_run)
            try:
                listing = (
                    source(store)
                    if source is not None
                    else ApiListing(client, store, options.filters, explain_empty=options.dry_run)
                )
                _run(client, data_dir, store, taxa, options, clock, reporter, on_disk, report, listing)
            except KeyboardInterrupt:  # another Ctrl-C while stopping: the run has stopped
                report.interrupted = True
            finally:
                report.interrupted |= _through_interrupts(reporter.close)
            if not options.dry_run:  # however the run ended, photos.csv lists what is on disk
                report.interrupted |= _through_interrupts(lambda: write_manifest(store, report.manifest))
            return report
        finally:
            store.close()


def _run(
    client: ApiClient,
    data_dir: Path,
    store: Store,
    taxa: Sequence[TaxonRow],
    options: FetchOptions,
    clock: Clock,
    reporter: Reporter,
    on_disk: OnDisk,
    report: FetchReport,
    listing: PhotoSource,
) -> None:
    """List the job from ``listing`` and download what is new, or only list it (--dry-run),
    into ``report``."""
    stop = Stop()
    budget = ByteBudget(
        store,
        clock,
        options.hourly_limit,
        options.daily_limit,
        wait=options.wait,
        on_wait=reporter.waiting,
        cancel=stop.hard_event,
    )
    listed: dict[str, dict[int, ListedTaxon]] = {size: {} for size in options.sizes}  # by size
    tally = Tally(lambda taxon_id, size: listed[size][taxon_id].report, reporter.finished)
    pool = (
        None
        if options.dry_run
        else _pool(client, data_dir, store, options, clock, budget, stop, on_disk, tally)
    )

    def queue(job: PhotoJob) -> None:
        listed[job.size][job.taxon_id].report.queued += 1
        if pool is not None:
            pool.put(job)

    feeder = Feeder(store, data_dir, queue, on_disk.untracked, moves=not options.dry_run)
    asked = Asked(options.sizes, options.filters, options.max_per_taxon)
    requests_before = client.requests_made

    def shut_down() -> None:  # safe to repeat: _through_interrupts may start it again
        if pool is not None:
            report.interrupted |= pool.finish()
        budget.close()
        store.flush()
        report.taxa = [r for size in options.sizes for r in settle(listed[size].values(), store, size)]
        report.api_requests = client.requests_made - requests_before
        report.pages = listing.pages_done if isinstance(listing, ApiListing) else 0
        report.moved = feeder.moved
        report.read_budget(budget)

    try:
        list_job(listing, feeder, taxa, asked, reporter, stop, listed)
    except ApiError as exc:
        report.error = exc  # the downloads already queued still finish
    except KeyboardInterrupt:
        report.interrupted = True
        stop.hard()
    except BaseException:
        stop.hard()
        raise
    finally:
        if _through_interrupts(shut_down, stop):  # not |=: shut_down may set it too
            report.interrupted = True
    if pool is not None and pool.fatal is not None:
        if isinstance(pool.fatal, InatdlError):
            report.error = pool.fatal
        else:
            raise pool.fatal
    if options.dry_run and not report.interrupted:
        for size in options.sizes:
            estimate(report, store, client.session, size, client.timeout)


def _through_interrupts(step: Callable[[], object], stop: Stop | None = None) -> bool:
    """Run ``step`` to its end however many Ctrl-C (or SIGTERM) come, each stopping the run
    hard and starting ``step`` again (it must be safe to repeat); True if one came.

    What a run does as it stops (let the workers end, flush the state, write photos.csv)
    must be done whole: a second Ctrl-C is how people say "stop now", not "lose photos.csv".
    """
    interrupted = False
    while True:
        try:
            with _signals_noted(stop) as came:
                step()
            return interrupted or bool(came)
        except KeyboardInterrupt:  # raised by a step itself, or before the signals were noted
            interrupted = True
            if stop is not None:
                stop.hard()


@contextlib.contextmanager
def _signals_noted(stop: Stop | None) -> Iterator[list[int]]:
    """Ctrl-C and SIGTERM noted (and the run stopped hard), not raised, while a stopping step
    runs. Raised, an interrupt that lands while a lock is being taken back after a wait
    leaves that lock to be released twice: "release unlocked lock" replaced the interrupt
    and lost photos.csv (seen in CI under load, after two signals in a row)."""
    came: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield came  # signals reach the main thread only
        return

    def note(signum: int, frame: object) -> None:
        came.append(signum)
        if stop is not None:
            stop.hard()

    previous = {number: signal.signal(number, note) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield came
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def _pool(
    client: ApiClient,
    data_dir: Path,
    store: Store,
    options: FetchOptions,
    clock: Clock,
    budget: ByteBudget,
    stop: Stop,
    on_disk: OnDisk,
    tally: Tally,
) -> Pool:
    """The workers, started, with their downloader."""
    downloader = Downloader(
        client.session,
        data_dir,
        budget,
        clock,
        stop.hard_event,
        timeout=client.timeout,
        sizes=PhotoSizes(lambda size: store.recent_sizes(size, SIZE_SAMPLE)),
        kept_parts=on_disk.kept_parts,
    )
    return Pool(downloader, store, stop, options.workers, tally.add)
